package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testMAC = bytes.Repeat([]byte{7}, 32)

func open(t testing.TB, path string, opts Options) *Log {
	t.Helper()
	if opts.MACKey == nil {
		opts.MACKey = testMAC
	}
	l, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func rec(i int) Record {
	return Record{Principal: fmt.Sprintf("user:u%d", i%3), Action: "keystack:Encrypt", Resource: "key/payments",
		KeyVersion: 3, Outcome: "ok", MessageID: []byte{byte(i), 0xab},
		EncryptionContext: map[string]string{"dept": "finance-secret-value"}}
}

func verifyFile(t *testing.T, path string, key Key, anchors ...Anchor) (*VerifyReport, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f, key, anchors...)
}

func TestAppendVerify(t *testing.T) {
	opts, key := Options{MACKey: testMAC, CheckpointEvery: 4}, Key{MAC: testMAC}
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, opts)
	for i := 0; i < 10; i++ {
		if err := l.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key)
	if err != nil {
		t.Fatal(err)
	}
	// 10 records, checkpoints after records 4 and 8, one at Close.
	if rep.Records != 10 || rep.Checkpoints != 3 || !rep.Sealed || rep.LastSeq != 13 || rep.Head != l.headHex() {
		t.Fatalf("report %+v, head %s", rep, l.headHex())
	}
	if a := l.Anchor(); a.Seq != 13 || a.Head != rep.Head || a.Offset != rep.Size {
		t.Fatalf("anchor %+v after Close, report %+v", a, rep)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("finance-secret-value")) {
		t.Fatal("encryption context value logged without LogContextValues")
	}
	if !bytes.Contains(data, []byte(`"context_hmac":"`)) || !bytes.Contains(data, []byte(`"message_id":"00ab"`)) {
		t.Fatalf("missing context hash or message id:\n%s", data)
	}
	// Reopen at the anchor continues the chain.
	anchor := l.Anchor()
	opts.Anchor = &anchor
	l = open(t, path, opts)
	if err := l.Append(context.Background(), rec(99)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyFile(t, path, key, anchor); err != nil || rep.Records != 11 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}
	wrong := Key{MAC: bytes.Repeat([]byte{8}, 32)}
	if _, err := verifyFile(t, path, wrong); !errors.Is(err, ErrTampered) {
		t.Fatalf("wrong key: %v", err)
	}
}

// tamperFixture writes 20 records with a checkpoint every 5 and returns the
// lines (with newlines): records on lines 1-5, 7-11, 13-17, 19-23, and the
// anchor of the closed log.
func tamperFixture(t *testing.T, key []byte) ([][]byte, Anchor) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, Options{MACKey: key, CheckpointEvery: 5})
	for i := 0; i < 20; i++ {
		if err := l.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	return lines[:len(lines)-1], l.Anchor()
}

// tamperCase is one attack on the fixture: the log it leaves and the line
// (0: found at the end, against the anchor) where Verify must find it.
type tamperCase struct {
	name      string
	log       [][]byte
	line      int
	truncated bool
}

func tamperCases(t *testing.T, lines [][]byte) []tamperCase {
	edit := func(i int, f func(*Entry)) [][]byte {
		out := append([][]byte(nil), lines...)
		e, _, err := parseLine(nil, bytes.TrimSuffix(out[i], []byte("\n")), [32]byte{})
		if err != nil {
			t.Fatal(err)
		}
		f(&e) // the stored hash is kept, as by an editor who does not rechain
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = append(b, '\n')
		return out
	}
	forger := newChain(bytes.Repeat([]byte{9}, 32)) // an attacker without the key
	// rechain edits line i and recomputes every later hash under a key
	// that is not the audit key.
	rechain := func(i int) [][]byte {
		out := append([][]byte(nil), lines[:i]...)
		var prev [32]byte
		for j := range lines {
			e, _, _ := parseLine(nil, bytes.TrimSuffix(lines[j], []byte("\n")), prev)
			if j < i {
				copy(prev[:], mustHex(t, e.Hash))
				continue
			}
			if j == i {
				e.Principal = "user:mallory"
			}
			if e.Type == TypeCheckpoint {
				e.Head = fmt.Sprintf("%x", prev)
			}
			line, h, err := e.seal(forger, prev)
			if err != nil {
				t.Fatal(err)
			}
			out, prev = append(out, line), h
		}
		return out
	}
	forged := func() [][]byte {
		last, _, _ := parseLine(nil, bytes.TrimSuffix(lines[len(lines)-1], []byte("\n")), [32]byte{})
		var prev [32]byte
		copy(prev[:], mustHex(t, last.Hash))
		e := Entry{Time: last.Time, Seq: last.Seq + 1, Type: TypeOperation, Principal: "user:owner", Action: "keystack:Decrypt", Outcome: "ok"}
		line, _, _ := e.seal(forger, prev)
		return append(append([][]byte(nil), lines...), line)
	}
	without := func(i int) [][]byte { return append(append([][]byte(nil), lines[:i]...), lines[i+1:]...) }
	return []tamperCase{
		{"edit", edit(3, func(e *Entry) { e.Principal = "user:mallory" }), 4, false},
		{"edit with recomputed chain", rechain(3), 4, false},
		{"edit checkpoint MAC", edit(5, func(e *Entry) { e.MAC = strings.Repeat("0", 64) }), 6, false},
		{"delete middle", without(3), 4, false},
		{"insertion", append(append(append([][]byte(nil), lines[:4]...), lines[2]), lines[4:]...), 5, false},
		{"swap", append(append(append([][]byte(nil), lines[:3]...), lines[4], lines[3]), lines[5:]...), 4, false},
		{"whitespace", append(append(append([][]byte(nil), lines[:3]...), append([]byte(" "), lines[3]...)), lines[4:]...), 4, false},
		{"append forged", forged(), 26, false},
		{"cut tail", lines[:21], 0, true},
		{"closing checkpoint removed", lines[:24], 0, true},
		{"cut tail to a torn line", append(append([][]byte(nil), lines[:24]...), lines[24][:40]), 0, true},
		{"deleted", nil, 0, true},
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyDetectsTampering(t *testing.T) {
	lines, anchor := tamperFixture(t, testMAC)
	if len(lines) != 25 {
		t.Fatalf("fixture has %d lines", len(lines))
	}
	if _, err := Verify(bytes.NewReader(bytes.Join(lines, nil)), Key{MAC: testMAC}, anchor); err != nil {
		t.Fatalf("untouched log: %v", err)
	}
	for _, c := range tamperCases(t, lines) {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(bytes.Join(c.log, nil)), Key{MAC: testMAC}, anchor)
			var te *TamperError
			if !errors.As(err, &te) || !errors.Is(err, ErrTampered) {
				t.Fatalf("err %v, want *TamperError", err)
			}
			if te.Line != c.line || errors.Is(err, ErrTruncated) != c.truncated {
				t.Fatalf("got line %d truncated %v (%v), want line %d truncated %v", te.Line, te.Truncated, err, c.line, c.truncated)
			}
		})
	}
	// An older copy of a log that went on: the anchor is past its end.
	t.Run("older copy", func(t *testing.T) {
		_, err := Verify(bytes.NewReader(bytes.Join(lines[:12], nil)), Key{MAC: testMAC}, anchor)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("older copy: %v", err)
		}
	})
	// Another log under the same key, as long as this one: the anchored
	// entry differs.
	t.Run("other log", func(t *testing.T) {
		other, _ := tamperFixture(t, testMAC)
		other[0] = bytes.Replace(other[0], []byte("user:u0"), []byte("user:u9"), 1)
		_, err := Verify(bytes.NewReader(bytes.Join(other, nil)), Key{MAC: testMAC}, anchor)
		if !errors.Is(err, ErrTampered) {
			t.Fatalf("other log: %v", err)
		}
	})
}

// TestVerifyWithoutAnchor: without an anchor a cut tail cannot be told from
// a shorter log, and an incomplete last line is a failed append, not an
// entry: both verify, the torn bytes reported.
func TestVerifyWithoutAnchor(t *testing.T) {
	lines, _ := tamperFixture(t, testMAC)
	rep, err := Verify(bytes.NewReader(bytes.Join(lines[:21], nil)), Key{MAC: testMAC})
	if err != nil || rep.LastSeq != 21 || rep.Sealed {
		t.Fatalf("cut log without anchor: %+v %v", rep, err)
	}
	torn := append(bytes.Join(lines, nil), lines[3][:30]...)
	rep, err = Verify(bytes.NewReader(torn), Key{MAC: testMAC})
	if err != nil || rep.TornBytes != 30 || rep.LastSeq != 25 {
		t.Fatalf("torn last line: %+v %v", rep, err)
	}
}

// headHex returns the hex chain hash of the last entry this Log wrote or read.
func (l *Log) headHex() string {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.seq == 0 {
		return ""
	}
	return hex.EncodeToString(l.head[:])
}
