package rewrap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlushFailureKeepsJournals breaks the flusher's filesystem descriptor
// so syncfs fails: the flush must report errNotDurable, keep the journals
// (a power cut could still need them), and RewrapPaths' results must turn
// the rewritten files into failures.
func TestFlushFailureKeepsJournals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.ks")
	if err := os.WriteFile(path, []byte("message"), 0o600); err != nil {
		t.Fatal(err)
	}
	jp := journalPath(path)
	if err := os.WriteFile(jp, []byte("journal"), 0o600); err != nil {
		t.Fatal(err)
	}
	fl, err := newFlusher([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	fl.add(path, jp)
	fl.fs.Close() // syncfs on a closed descriptor fails with EBADF
	err = fl.finish()
	if !errors.Is(err, errNotDurable) {
		t.Fatalf("finish: %v, want errNotDurable", err)
	}
	if _, err := os.Stat(jp); err != nil {
		t.Fatalf("journal removed after a failed flush: %v", err)
	}
	results := []FileResult{{Path: path, Outcome: Rewrapped, InPlace: true}, {Path: "x", Outcome: Skipped}}
	failUnflushed(results, err)
	if results[0].Outcome != Failed || !strings.Contains(results[0].Reason, errNotDurable.Error()) || results[1].Outcome != Skipped {
		t.Fatalf("results %+v", results)
	}
}
