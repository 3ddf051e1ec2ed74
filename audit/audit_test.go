package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
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
	if opts.MACKey == nil && opts.SigningKey == nil {
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

func verifyFile(t *testing.T, path string, key Key) (*VerifyReport, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f, key)
}

func TestAppendVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	for _, c := range []struct {
		name string
		opts Options
		key  Key
	}{
		{"hmac", Options{MACKey: testMAC, CheckpointEvery: 4}, Key{MAC: testMAC}},
		{"ed25519", Options{SigningKey: priv, CheckpointEvery: 4}, Key{PublicKey: pub}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l := open(t, path, c.opts)
			for i := 0; i < 10; i++ {
				if err := l.Append(context.Background(), rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyFile(t, path, c.key)
			if err != nil {
				t.Fatal(err)
			}
			// 10 records, checkpoints after records 4 and 8, one at Close.
			if rep.Records != 10 || rep.Checkpoints != 3 || !rep.Sealed || rep.LastSeq != 13 || rep.Head != l.Head() {
				t.Fatalf("report %+v, head %s", rep, l.Head())
			}
			data, _ := os.ReadFile(path)
			if bytes.Contains(data, []byte("finance-secret-value")) {
				t.Fatal("encryption context value logged without LogContextValues")
			}
			if !bytes.Contains(data, []byte(`"context_hmac":"`)) || !bytes.Contains(data, []byte(`"message_id":"00ab"`)) {
				t.Fatalf("missing context hash or message id:\n%s", data)
			}
			// Reopen continues the chain.
			l = open(t, path, c.opts)
			if err := l.Append(context.Background(), rec(99)); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if rep, err := verifyFile(t, path, c.key); err != nil || rep.Records != 11 {
				t.Fatalf("after reopen: %+v %v", rep, err)
			}
			wrong := Key{MAC: bytes.Repeat([]byte{8}, 32)}
			if _, err := verifyFile(t, path, wrong); !errors.Is(err, ErrTampered) {
				t.Fatalf("wrong key: %v", err)
			}
		})
	}
}

// tamperFixture writes 20 records with a checkpoint every 5 and returns the
// lines (with newlines): records on lines 1-5, 7-11, 13-17, 19-23.
func tamperFixture(t *testing.T) [][]byte {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, Options{CheckpointEvery: 5})
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
	return lines[:len(lines)-1]
}

func TestVerifyDetectsTampering(t *testing.T) {
	lines := tamperFixture(t)
	if len(lines) != 25 {
		t.Fatalf("fixture has %d lines", len(lines))
	}
	if _, err := Verify(bytes.NewReader(bytes.Join(lines, nil)), Key{MAC: testMAC}); err != nil {
		t.Fatalf("untouched log: %v", err)
	}
	edit := func(i int, f func(*Entry)) [][]byte {
		out := append([][]byte(nil), lines...)
		e, _, err := parseLine(bytes.TrimSuffix(out[i], []byte("\n")), [32]byte{})
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
	// rechain edits line i and recomputes every later hash, as an attacker
	// without the MAC key can.
	rechain := func(i int) [][]byte {
		out := append([][]byte(nil), lines...)
		var prev [32]byte
		for j := range out {
			e, _, _ := parseLine(bytes.TrimSuffix(out[j], []byte("\n")), prev)
			if j == i {
				e.Principal = "user:mallory"
			}
			if j >= i && e.Type == TypeCheckpoint {
				e.Head = fmt.Sprintf("%x", prev)
			}
			line, h, err := e.seal(prev)
			if err != nil {
				t.Fatal(err)
			}
			if j >= i {
				out[j] = line
			}
			prev = h
		}
		return out
	}
	without := func(i int) [][]byte { return append(append([][]byte(nil), lines[:i]...), lines[i+1:]...) }
	cases := []struct {
		name      string
		log       [][]byte
		line      int
		truncated bool
	}{
		{"edit", edit(3, func(e *Entry) { e.Principal = "user:mallory" }), 4, false},
		{"edit with recomputed chain", rechain(3), 6, false},
		{"edit checkpoint MAC", edit(5, func(e *Entry) { e.MAC = strings.Repeat("0", 64) }), 6, false},
		{"deletion", without(3), 4, false},
		{"insertion", append(append(append([][]byte(nil), lines[:4]...), lines[2]), lines[4:]...), 5, false},
		{"reorder", append(append(append([][]byte(nil), lines[:3]...), lines[4], lines[3]), lines[5:]...), 4, false},
		{"whitespace", append(append(append([][]byte(nil), lines[:3]...), append([]byte(" "), lines[3]...)), lines[4:]...), 4, false},
		{"truncation", lines[:21], 22, true},
		{"closing checkpoint removed", lines[:24], 25, true},
		{"partial last line", append(append([][]byte(nil), lines[:24]...), lines[24][:40]), 25, false},
		{"empty", nil, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(bytes.Join(c.log, nil)), Key{MAC: testMAC})
			var te *TamperError
			if !errors.As(err, &te) || !errors.Is(err, ErrTampered) {
				t.Fatalf("err %v, want *TamperError", err)
			}
			if te.Line != c.line || errors.Is(err, ErrTruncated) != c.truncated {
				t.Fatalf("got line %d truncated %v (%v), want line %d truncated %v", te.Line, te.Truncated, err, c.line, c.truncated)
			}
		})
	}
}
