package rewrap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// flushTree writes one message for each write path of a rewrap to
// "app/v2": sector.ks (header of one sector, in place), journal.ks (longer
// header, in place under a journal) and grow.ks (header grows: new file).
func flushTree(t *testing.T, dir string) (from envelope.Keyring, to envelope.Keyring, pts map[string][]byte) {
	t.Helper()
	v1, short, next := keyFor(t, "app/v1"), keyFor(t, "a/v1"), keyFor(t, "app/v2")
	pts = map[string][]byte{
		"sector.ks":  writeMessageContext(t, filepath.Join(dir, "sector.ks"), v1, envelope.SuiteCommitted, 256, 700, map[string]string{"app": "x"}),
		"journal.ks": writeMessageContext(t, filepath.Join(dir, "journal.ks"), v1, envelope.SuiteCommitted, 256, 700, map[string]string{"app": strings.Repeat("x", 600)}),
		"grow.ks":    writeMessageContext(t, filepath.Join(dir, "grow.ks"), short, envelope.SuiteCommitted, 256, 700, map[string]string{"app": "x"}),
	}
	return keyring.NewMulti(v1, short, next), next, pts
}

func checkTree(t *testing.T, dir string, kr envelope.Keyring, pts map[string][]byte, when string) {
	t.Helper()
	for name, pt := range pts {
		if got, err := decryptFile(t, filepath.Join(dir, name), kr); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: %s does not decrypt: %v", when, name, err)
		}
	}
}

// TestRewrapPathsBatchFlush checks the durability point of SyncBatch: the
// in-place writes are not synced one by one, one flush covers every file
// the summary reports as rewrapped, and journals go only after it. With
// SyncPerFile every file is synced and no batch flush runs.
func TestRewrapPathsBatchFlush(t *testing.T) {
	dir := t.TempDir()
	from, to, pts := flushTree(t, dir)
	var flushes [][]string
	flushHook = func(files []string) { flushes = append(flushes, slices.Clone(files)) }
	defer func() { flushHook, flushEvery = nil, 1024 }()
	flushEvery = 1 // every file also starts a background flush

	syncs := fileSyncs.Load()
	sum, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: from, To: to})
	if err != nil || len(sum.Rewrapped) != 3 || len(sum.Failed) != 0 {
		t.Fatalf("%+v %v", sum, err)
	}
	if n := fileSyncs.Load() - syncs; n != 1 {
		t.Fatalf("%d per-file syncs, want 1 (the new file's temp data before its rename)", n)
	}
	if len(flushes) != 1 {
		t.Fatalf("%d final flushes, want 1", len(flushes))
	}
	for _, r := range sum.Rewrapped {
		if !slices.Contains(flushes[0], r.Path) {
			t.Fatalf("%s reported rewrapped but not flushed", r.Path)
		}
	}
	checkTree(t, dir, to, pts, "after the rewrap")
	assertNoScratch(t, dir)

	flushes = nil
	syncs = fileSyncs.Load()
	back := keyFor(t, "app/v3")
	sum, err = RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: to, To: back, Sync: SyncPerFile})
	if err != nil || len(sum.Rewrapped) != 3 {
		t.Fatalf("%+v %v", sum, err)
	}
	if n := fileSyncs.Load() - syncs; n != 3 || len(flushes) != 0 {
		t.Fatalf("per-file mode: %d file syncs, %d batch flushes", n, len(flushes))
	}
	checkTree(t, dir, back, pts, "after the per-file rewrap")
}

// TestRewrapPathsBatchCrashAtEveryStep kills a batch rewrap (no cleanup,
// no flush) at each step of the three write paths and around the flush:
// every file must decrypt under the old or the new key, a journal must
// outlive every kill before the flush, and the next run must finish.
func TestRewrapPathsBatchCrashAtEveryStep(t *testing.T) {
	for _, step := range []string{"journal-written", "header-written", "temp-written", "renamed", "before-flush", "flushed"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			from, to, pts := flushTree(t, dir)
			crashed := false
			crashAt = func(s string) bool { crashed = crashed || s == step; return s == step }
			defer func() { crashAt = nil }()
			_, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: from, To: to, Workers: 1})
			if !crashed || !errors.Is(err, errSimulatedCrash) {
				t.Fatalf("step %s: crashed %v, err %v", step, crashed, err)
			}
			crashAt = nil
			checkTree(t, dir, from, pts, "after the crash")
			_, jerr := os.Stat(journalPath(filepath.Join(dir, "journal.ks")))
			if (step == "before-flush" || step == "flushed") && jerr != nil {
				t.Fatalf("journal gone before the flush finished: %v", jerr)
			}
			sum, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: from, To: to})
			if err != nil || len(sum.Failed) != 0 {
				t.Fatalf("resume: %+v %v", sum, err)
			}
			checkTree(t, dir, to, pts, "after resuming")
			assertNoScratch(t, dir)
		})
	}
}
