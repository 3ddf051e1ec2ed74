package rewrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// journaledCrash writes a message whose header is rewritten under a
// journal, rewraps it with a crash at step (in batch mode when batch),
// and checks that the crash left a journal behind.
func journaledCrash(t *testing.T, step string, batch bool) (dir, path string, from envelope.Keyring, to envelope.Keyring) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "m.ks")
	v1, v2 := keyFor(t, "app/v1"), keyFor(t, "app/v2")
	writeMessageContext(t, path, v1, envelope.SuiteCommitted, 256, 3000, map[string]string{"app": strings.Repeat("x", 800)})
	crashAt = func(s string) bool { return s == step }
	defer func() { crashAt = nil }()
	opts := RewrapOptions{From: v1, To: v2, Workers: 1}
	if batch {
		if _, err := RewrapPaths(context.Background(), []string{dir}, opts); !errors.Is(err, errSimulatedCrash) {
			t.Fatalf("step %s: %v", step, err)
		}
	} else if res := RewrapFile(context.Background(), path, opts); res.Reason != errSimulatedCrash.Error() {
		t.Fatalf("step %s: %+v", step, res)
	}
	if !exists(journalPath(path)) {
		t.Fatalf("no journal after a crash at %s", step)
	}
	return dir, path, keyring.NewMulti(v1, v2), v2
}

// journalSteps are the kill points at which a journal is on disk.
var journalSteps = []struct {
	step  string
	batch bool
}{
	{"journal-written", false}, {"header-written", false},
	{"journal-written", true}, {"header-written", true}, {"before-flush", true}, {"flushed", true},
}

// TestJournalNeverWritesOverAnotherFile kills a rewrap at every step that
// leaves a journal, then puts something else at the path (replaced, edited
// in place, rewritten in place, another message), reruns the rewrap on the
// tree and on the file itself: no byte of the new content may change, and
// the journal must be discarded.
func TestJournalNeverWritesOverAnotherFile(t *testing.T) {
	other := keyFor(t, "outside/v1")
	changes := map[string]func(t *testing.T, path string){
		"replaced-by-plaintext": func(t *testing.T, path string) { replaceFile(t, path, randomBytes(4000)) },
		"replaced-by-other-message": func(t *testing.T, path string) {
			tmp := path + ".new"
			writeMessageContext(t, tmp, other, envelope.SuiteCommitted, 256, 3000, map[string]string{"app": strings.Repeat("y", 800)})
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		},
		"header-edited-in-place": func(t *testing.T, path string) { editInPlace(t, path, 100, randomBytes(40)) },
		"rewritten-in-place": func(t *testing.T, path string) {
			if err := os.WriteFile(path, randomBytes(5000), 0o600); err != nil { // O_TRUNC: same inode
				t.Fatal(err)
			}
		},
	}
	for _, s := range journalSteps {
		for name, change := range changes {
			for _, root := range []string{"tree", "file"} {
				t.Run(s.step+batchName(s.batch)+"/"+name+"/"+root, func(t *testing.T) {
					dir, path, from, to := journaledCrash(t, s.step, s.batch)
					change(t, path)
					want, _ := os.ReadFile(path)
					roots := map[string][]string{"tree": {dir}, "file": {path}}[root]
					sum, err := RewrapPaths(context.Background(), roots, RewrapOptions{From: from, To: to})
					if err != nil {
						t.Fatal(err)
					}
					if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
						t.Fatalf("the new content changed")
					}
					assertJournal(t, sum.Journals, JournalDiscarded, "changed since")
					assertNoScratch(t, dir)
				})
			}
		}
	}
}

func batchName(batch bool) string {
	if batch {
		return "/batch"
	}
	return "/file"
}

// TestJournalFinishesItsOwnFile: after a crash at every journal step the
// rerun (on the tree, on the file named, or RewrapFile) finishes the
// rewrite or finds it done, and removes the journal.
func TestJournalFinishesItsOwnFile(t *testing.T) {
	for _, s := range journalSteps {
		for _, root := range []string{"tree", "file", "RewrapFile"} {
			t.Run(s.step+batchName(s.batch)+"/"+root, func(t *testing.T) {
				dir, path, from, to := journaledCrash(t, s.step, s.batch)
				jp := journalPath(path)
				var jr []JournalResult
				switch root {
				case "RewrapFile":
					res := RewrapFile(context.Background(), path, RewrapOptions{From: from, To: to})
					if res.Outcome == Failed || res.Journal == nil {
						t.Fatalf("%+v", res)
					}
					jr = []JournalResult{*res.Journal}
				default:
					roots := map[string][]string{"tree": {dir}, "file": {path}}[root]
					sum, err := RewrapPaths(context.Background(), roots, RewrapOptions{From: from, To: to})
					if err != nil || len(sum.Failed) != 0 {
						t.Fatalf("%+v %v", sum, err)
					}
					jr = sum.Journals
				}
				want := JournalRemoved // the new header was written before the kill
				if s.step == "journal-written" {
					want = JournalApplied
				}
				assertJournal(t, jr, want, "")
				if exists(jp) {
					t.Fatal("journal left")
				}
				if _, err := decryptFile(t, path, to); err != nil {
					t.Fatalf("not on the new key: %v", err)
				}
			})
		}
	}
}

// TestJournalRollsForwardTornHeader: a power cut mid-write can leave some
// sectors of the header new and others old; the journal still applies.
// The context length is chosen so the EDKs and the header tag, which the
// rewrap changes, fall in different sectors.
func TestJournalRollsForwardTornHeader(t *testing.T) {
	v1, v2 := keyFor(t, "app/v1"), keyFor(t, "app/v2")
	for n := 300; n < 700; n++ {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.ks")
		writeMessageContext(t, path, v1, envelope.SuiteCommitted, 256, 3000, map[string]string{"app": strings.Repeat("x", n)})
		crashAt = func(s string) bool { return s == "journal-written" }
		RewrapFile(context.Background(), path, RewrapOptions{From: v1, To: v2})
		crashAt = nil
		data, err := os.ReadFile(journalPath(path))
		if err != nil {
			continue // a header of one sector: no journal
		}
		j, err := parseJournal(data)
		if err != nil {
			t.Fatal(err)
		}
		diff := differingSectors(j.oldHeader, j.newHeader)
		if len(diff) < 2 {
			continue
		}
		off := diff[0] * atomicWriteSize
		editInPlace(t, path, int64(off), j.newHeader[off:min(off+atomicWriteSize, len(j.newHeader))])
		sum, err := RewrapPaths(context.Background(), []string{path}, RewrapOptions{From: v2, To: v2})
		if err != nil || len(sum.Failed) != 0 {
			t.Fatalf("%+v %v", sum, err)
		}
		assertJournal(t, sum.Journals, JournalApplied, "")
		if _, err := decryptFile(t, path, v2); err != nil {
			t.Fatalf("torn header not rolled forward: %v", err)
		}
		return
	}
	t.Fatal("no context length puts the rewrap's changes in two sectors")
}

func differingSectors(a, b []byte) []int {
	var out []int
	for i := 0; i*atomicWriteSize < len(a); i++ {
		lo, hi := i*atomicWriteSize, min((i+1)*atomicWriteSize, len(a))
		if !bytes.Equal(a[lo:hi], b[lo:hi]) {
			out = append(out, i)
		}
	}
	return out
}

// TestJournalOfMissingFile: a journal whose file is gone is removed with a
// warning, and nothing is created at the path.
func TestJournalOfMissingFile(t *testing.T) {
	dir, path, from, to := journaledCrash(t, "header-written", true)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	sum, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	assertJournal(t, sum.Journals, JournalDiscarded, "no longer exists")
	if exists(path) {
		t.Fatal("the path was created")
	}
	assertNoScratch(t, dir)
}

// TestJournalOlderFormatNotApplied: a journal of an earlier version names
// no file or old header, so it is discarded and the file left as it is.
func TestJournalOlderFormatNotApplied(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	content := randomBytes(2000)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journalPath(path), append(append([]byte{}, olderJournalMagic...), randomBytes(900)...), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := recoverJournals(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	assertJournal(t, res, JournalDiscarded, "earlier keystack")
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("file changed")
	}
}

// TestJournalCrashWhileResolving kills the rerun after it applied a journal
// and before it removed it: the next run finds the new header and only
// removes the journal.
func TestJournalCrashWhileResolving(t *testing.T) {
	dir, path, from, to := journaledCrash(t, "journal-written", true)
	crashAt = func(s string) bool { return s == "journal-resolved" }
	_, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: from, To: to})
	crashAt = nil
	if !errors.Is(err, errSimulatedCrash) {
		t.Fatal(err)
	}
	sum, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: from, To: to})
	if err != nil || len(sum.Failed) != 0 {
		t.Fatalf("%+v %v", sum, err)
	}
	assertJournal(t, sum.Journals, JournalRemoved, "")
	if _, err := decryptFile(t, path, to); err != nil {
		t.Fatal(err)
	}
	assertNoScratch(t, dir)
}

// TestDryRunLeavesJournals: a dry run changes nothing, journals included.
func TestDryRunLeavesJournals(t *testing.T) {
	dir, path, from, to := journaledCrash(t, "journal-written", false)
	before, _ := os.ReadFile(path)
	if _, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: from, To: to, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, before) || !exists(journalPath(path)) {
		t.Fatal("dry run changed the file or removed the journal")
	}
}

// TestListFilesPassesOverScratch: planning never sees journals or temps.
func TestListFilesPassesOverScratch(t *testing.T) {
	dir, path, _, _ := journaledCrash(t, "journal-written", false)
	files, err := listFiles(context.Background(), []string{dir})
	if err != nil || len(files) != 1 || files[0] != path {
		t.Fatalf("%v %v", files, err)
	}
}

func assertJournal(t *testing.T, got []JournalResult, outcome, reason string) {
	t.Helper()
	if len(got) != 1 || got[0].Outcome != outcome || !strings.Contains(got[0].Reason, reason) {
		t.Fatalf("journals %+v, want one %s (%q)", got, outcome, reason)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// replaceFile puts data at path as a new file (a new inode), as editors
// and keystack decrypt do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// editInPlace overwrites bytes of path at off, keeping its inode and size.
func editInPlace(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}
