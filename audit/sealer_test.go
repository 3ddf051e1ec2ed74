package audit_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keystack/keystack/audit"
)

// TestSealerWritesTheFileFormat: entries a Sealer seals from the zero hash
// are a log audit.Verify accepts, and Check refuses each of them edited,
// out of order or on the wrong predecessor.
func TestSealerWritesTheFileFormat(t *testing.T) {
	key := audit.Key{MAC: []byte("0123456789abcdef0123456789abcdef")}
	s, err := audit.NewSealer(key, false)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	var lines [][]byte
	var heads [][32]byte
	var prev [32]byte
	for i, r := range []audit.Record{
		{Principal: "user:a", Action: "kms:Decrypt", Resource: "k", Outcome: "ok", EncryptionContext: map[string]string{"t": "x"}},
		{Type: audit.TypeDecision, Principal: "user:<b>", Decision: "Deny", Implicit: true, Reason: "no statement\x00"},
		{Type: audit.TypeNote, Reason: "note"},
	} {
		e, err := s.Entry(r)
		if err != nil {
			t.Fatal(err)
		}
		e.Time, e.Seq = "2026-12-02T00:00:00Z", uint64(i+1)
		line, h, err := s.Seal(&e, prev)
		if err != nil {
			t.Fatal(err)
		}
		if _, got, err := s.Check(line, prev, uint64(i+1)); err != nil || got != h {
			t.Fatalf("Check of entry %d: %v", i+1, err)
		}
		log.Write(append(line, '\n'))
		lines, heads, prev = append(lines, line), append(heads, prev), h
	}
	rep, err := audit.Verify(&log, key)
	if err != nil || rep.Entries != 3 || rep.Records != 2 {
		t.Fatalf("audit.Verify of sealed entries: %+v, %v", rep, err)
	}
	edited := bytes.Replace(lines[0], []byte("kms:Decrypt"), []byte("kms:Encrypt"), 1)
	for name, c := range map[string]struct {
		line []byte
		prev [32]byte
		seq  uint64
	}{"edited": {edited, heads[0], 1}, "wrong seq": {lines[1], heads[1], 3}, "wrong predecessor": {lines[2], heads[0], 3}} {
		if _, _, err := s.Check(c.line, c.prev, c.seq); err == nil {
			t.Errorf("Check accepted an entry %s", name)
		}
	}
	if _, err := s.Entry(audit.Record{Type: audit.TypeCheckpoint}); err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Errorf("Entry of a checkpoint record: %v", err)
	}
	if _, err := audit.NewSealer(audit.Key{MAC: []byte("short")}, false); err == nil {
		t.Error("NewSealer accepted a short key")
	}
}
