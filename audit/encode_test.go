package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// encodeCases are entries covering every field, the omitempty rules and
// strings that need escaping (quotes, HTML characters, control characters,
// non-ASCII, U+2028, invalid UTF-8).
func encodeCases() []Entry {
	return []Entry{
		{},
		{Time: "2026-01-02T03:04:05.123Z", Seq: 7, Type: TypeDecision, Principal: "user:alice", Action: "keystack:Encrypt",
			Resource: "key/payments", KeyVersion: 3, Decision: "Allow", Statements: []string{"S1", "Statement[2]"},
			ContextHMAC: "ab", Prev: "00"},
		{Type: TypeDecision, Decision: "Deny", Implicit: true, Reason: `S1: condition "dept" <failed> & more`,
			KeyVersion: -1, Statements: []string{}, Context: map[string]string{}, Prev: "11"},
		{Type: TypeOperation, Outcome: "ok", MessageID: "deadbeef", Context: map[string]string{
			"z": "last", "a": "first\n\t\"q\"\\", "é": "ü\u2028\u2029", "ctl": "\x00\x01\x1f\x7f", "bad": "\xff\xfe"}},
		{Type: TypeCheckpoint, Seq: 1 << 63, Head: "cafe", MAC: "beef", Sig: "f00d", Final: true, Prev: "22", Hash: "33"},
	}
}

func checkEncoding(t *testing.T, e Entry) {
	t.Helper()
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendEntry(nil, &e, nil, true); !bytes.Equal(got, want) {
		t.Fatalf("appendEntry with hash:\n got %s\nwant %s", got, want)
	}
	c, err := e.canonical()
	if err != nil {
		t.Fatal(err)
	}
	if got := appendEntry([]byte("prefix"), &e, nil, false); !bytes.Equal(got[len("prefix"):], c) {
		t.Fatalf("appendEntry without hash:\n got %s\nwant %s", got[len("prefix"):], c)
	}
}

// TestAppendEntryMatchesJSON: the hand-written encoder is byte for byte
// encoding/json's, which Verify uses to check the canonical form.
func TestAppendEntryMatchesJSON(t *testing.T) {
	for _, e := range encodeCases() {
		checkEncoding(t, e)
	}
}

// TestSealedLineVerifies: a line built by sealTo is the canonical encoding
// of the entry it holds, and its hash is the chain hash Verify recomputes.
func TestSealedLineVerifies(t *testing.T) {
	prev := [32]byte{1, 2, 3}
	for _, e := range encodeCases() {
		delete(e.Context, "bad") // invalid UTF-8 does not survive a JSON round trip
		c := newChain(testMAC)
		line, h, err := e.sealTo(c, nil, prev, true)
		if err != nil {
			t.Fatal(err)
		}
		got, want, err := parseLine(c, bytes.TrimSuffix(line, []byte{'\n'}), prev)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if want != h || got.Hash != e.Hash {
			t.Fatalf("%s: chain hash mismatch", line)
		}
	}
}

// FuzzAppendEntry compares the encoder with encoding/json on arbitrary
// strings in every string position.
func FuzzAppendEntry(f *testing.F) {
	for _, e := range encodeCases() {
		f.Add(e.Principal, e.Reason, e.MessageID, e.Context["a"], e.KeyVersion, e.Seq, e.Implicit)
	}
	f.Add("<&>", "\u2028", "\xed\xa0\x80", "\\u0000", 0, uint64(0), false)
	f.Fuzz(func(t *testing.T, a, b, c, d string, kv int, seq uint64, implicit bool) {
		checkEncoding(t, Entry{Time: a, Seq: seq, Type: b, Principal: c, Action: d, Resource: a + b,
			KeyVersion: kv, Decision: b, Implicit: implicit, Statements: []string{a, d}, Reason: c,
			Outcome: d, MessageID: a, ContextHMAC: b, Context: map[string]string{a: b, c: d},
			Head: c, MAC: d, Sig: a, Final: implicit, Prev: b, Hash: c})
	})
}

// TestAppendAllOneChain: records appended together are written in order
// and the log still verifies, in both durability modes.
func TestAppendAllOneChain(t *testing.T) {
	for _, mode := range []Durability{Sync, Batch} {
		t.Run(modeName(mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l := open(t, path, Options{Durability: mode, CheckpointEvery: 3})
			for i := 0; i < 4; i++ {
				if err := l.Append(context.Background(), rec(2*i), rec(2*i+1)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyFile(t, path, Key{MAC: testMAC})
			if err != nil {
				t.Fatal(err)
			}
			// 8 records, a checkpoint after every 3rd, and the closing one.
			if rep.Records != 8 || rep.Checkpoints != 3 || !rep.Sealed {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}

// TestAppendAllSharedContext: records sharing one context map get the same
// context HMAC as a record appended alone with an equal context.
func TestAppendAllSharedContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, Options{Durability: Batch, LogContextValues: true})
	shared, alone := rec(1), rec(2)
	second := shared
	second.Action = "keystack:GenerateDataKey"
	ctx := context.Background()
	if err := l.Append(ctx, shared, second); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, alone); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []Entry
	for e, err := range Query(f, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != TypeCheckpoint {
			got = append(got, e)
		}
	}
	if len(got) != 3 || got[0].ContextHMAC == "" || got[0].ContextHMAC != got[1].ContextHMAC ||
		got[1].ContextHMAC != got[2].ContextHMAC || got[1].Context["dept"] != "finance-secret-value" {
		t.Fatalf("entries %+v", got)
	}
}

// TestInvalidUTF8StillVerifies: invalid UTF-8 in a record (a principal
// name, a logged context) is replaced, so the log still verifies and
// reopens instead of looking tampered with.
func TestInvalidUTF8StillVerifies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, Options{Durability: Batch, LogContextValues: true})
	r := rec(1)
	r.Principal, r.Reason, r.Statements = "user:\xff", "why \xfe", []string{"S\xc3"}
	r.EncryptionContext = map[string]string{"k\xff": "v\xfe", "ok": "fine"}
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, path, Options{Durability: Batch})
	if err := l.Append(context.Background(), rec(2)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyFile(t, path, Key{MAC: testMAC}); err != nil || rep.Records != 2 {
		t.Fatalf("report %+v err %v", rep, err)
	}
	if r.Principal != "user:\xff" || r.EncryptionContext["k\xff"] != "v\xfe" {
		t.Fatal("the caller's record was modified")
	}
}
