package rewrap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/inventory"
	"github.com/keystack/keystack/internal/msgtree"
	"github.com/keystack/keystack/keystore"
)

// sealFile encrypts a small message under the store's primary of name.
func sealFile(t *testing.T, st *keystore.Store, name, path string) {
	t.Helper()
	ctx := context.Background()
	kr, err := st.EncryptKeyring(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := envelope.EncryptBytes(ctx, []byte("retire me"), kr, envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, msg, 0o600); err != nil {
		t.Fatal(err)
	}
}

// newInsecureStore is a new local store without a passphrase.
func newInsecureStore(t *testing.T) *keystore.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	if _, err := keystore.Init(dir, keystore.InitOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	st, err := keystore.Open(dir, keystore.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// storeTree is a tree of messages under the store keys k1 and k2 (one of
// them signed, one in a subdirectory), a message under a key outside the
// store, and a file that is not a message. Both keys are then rotated.
func storeTree(t *testing.T) (st *keystore.Store, dir string) {
	t.Helper()
	ctx := context.Background()
	st = newInsecureStore(t)
	for _, k := range []string{"k1", "k2"} {
		if _, err := st.CreateKey(ctx, k, keystore.CreateKeyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	sealFile(t, st, "k1", filepath.Join(dir, "a.ks"))
	sealFile(t, st, "k1", filepath.Join(dir, "sub", "b.ks"))
	sealFile(t, st, "k2", filepath.Join(dir, "c.ks"))
	kr, err := st.EncryptKeyring(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	writeMessage(t, filepath.Join(dir, "d-signed.ks"), kr, envelope.SuiteCommittedSigned, 64, 300)
	writeMessage(t, filepath.Join(dir, "foreign.ks"), keyFor(t, "stranger"), envelope.SuiteCommitted, 4096, 100)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a message"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k1", "k2"} {
		if _, err := st.RotateKey(ctx, k, ""); err != nil {
			t.Fatal(err)
		}
	}
	return st, dir
}

// relPaths are the results' paths relative to dir, in the summary's order.
func relPaths(t *testing.T, dir string, rs []FileResult) []string {
	t.Helper()
	var out []string
	for _, r := range rs {
		rel, err := filepath.Rel(dir, r.Path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rel)
	}
	return out
}

// TestRewrapStoreParsesOnce: Rewrap moves each message to the primaries of
// the store keys it uses, walking the tree once and reading each header
// once, also on the rerun, which skips every finished message. A message
// under a key outside the store fails with ErrNoRewrapTarget, unchanged.
func TestRewrapStoreParsesOnce(t *testing.T) {
	ctx := context.Background()
	st, dir := storeTree(t)
	foreign, _ := os.ReadFile(filepath.Join(dir, "foreign.ks"))
	for run := range 2 {
		walks, reads := msgtree.Walks.Load(), msgtree.Reads.Load()
		sum, err := Rewrap(ctx, st, []string{dir}, StoreRewrapOptions{Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		if n := msgtree.Walks.Load() - walks; n != 1 {
			t.Errorf("run %d walked %d trees, want 1", run, n)
		}
		if n := msgtree.Reads.Load() - reads; n != 6 {
			t.Errorf("run %d read %d headers of 6 files, want 6", run, n)
		}
		// Sorted by path.
		done, skipped := []string{"a.ks", "c.ks", "d-signed.ks", "sub/b.ks"}, []string{"notes.txt"}
		if run == 1 {
			done, skipped = nil, []string{"a.ks", "c.ks", "d-signed.ks", "notes.txt", "sub/b.ks"}
		}
		if got := relPaths(t, dir, sum.Rewrapped); !slices.Equal(got, done) {
			t.Errorf("run %d rewrapped %q, want %q", run, got, done)
		}
		if got := relPaths(t, dir, sum.Skipped); !slices.Equal(got, skipped) {
			t.Errorf("run %d skipped %q, want %q", run, got, skipped)
		}
		if len(sum.Failed) != 1 || !errors.Is(sum.Failed[0].Err, ErrNoRewrapTarget) || sum.Failed[0].Reason != ErrNoRewrapTarget.Error() {
			t.Fatalf("run %d failed %+v, want foreign.ks with ErrNoRewrapTarget", run, sum.Failed)
		}
	}
	inv, err := inventory.TakeInventory(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Uses("k1", 1) != 0 || inv.Uses("k2", 1) != 0 || inv.Uses("k1", 2) != 3 || inv.Uses("k2", 2) != 1 {
		t.Fatalf("inventory after rewrap: %+v", inv.Keys)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "foreign.ks")); !bytes.Equal(got, foreign) {
		t.Fatal("the foreign message changed")
	}
	checkDecrypts(t, st, dir, "a.ks", "sub/b.ks", "c.ks", "d-signed.ks")
}

func checkDecrypts(t *testing.T, st *keystore.Store, dir string, files ...string) {
	t.Helper()
	kr, err := st.DecryptKeyring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		msg, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := envelope.DecryptBytes(context.Background(), msg, kr, envelope.DecryptOptions{}); err != nil {
			t.Errorf("%s no longer decrypts: %v", f, err)
		}
	}
}

// TestRewrapStoreExplicitTargets: with Keys, every message the store can
// open moves there; a target that does not exist stops the run before any
// file, also in a tree without messages.
func TestRewrapStoreExplicitTargets(t *testing.T) {
	ctx := context.Background()
	st, dir := storeTree(t)
	sum, err := Rewrap(ctx, st, []string{dir}, StoreRewrapOptions{Keys: []string{"k2"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := relPaths(t, dir, sum.Rewrapped); !slices.Equal(got, []string{"a.ks", "c.ks", "d-signed.ks", "sub/b.ks"}) {
		t.Fatalf("rewrapped %q", got)
	}
	if len(sum.Failed) != 1 || !errors.Is(sum.Failed[0].Err, envelope.ErrNoDecryptKey) {
		t.Fatalf("failed %+v, want foreign.ks: no decrypt key", sum.Failed)
	}
	inv, err := inventory.TakeInventory(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Uses("k2", 2) != 4 {
		t.Fatalf("inventory after rewrap -k k2: %+v", inv.Keys)
	}
	empty := t.TempDir()
	sum, err = Rewrap(ctx, st, []string{empty}, StoreRewrapOptions{Keys: []string{"nosuch"}})
	if !errors.Is(err, keystore.ErrKeyNotFound) || sum == nil || len(sum.Rewrapped)+len(sum.Skipped)+len(sum.Failed) != 0 {
		t.Fatalf("rewrap to a missing key: %+v, %v", sum, err)
	}
}

// TestRewrapStoreDryRun changes nothing and reports what would move.
func TestRewrapStoreDryRun(t *testing.T) {
	st, dir := storeTree(t)
	before, _ := os.ReadFile(filepath.Join(dir, "a.ks"))
	sum, err := Rewrap(context.Background(), st, []string{dir}, StoreRewrapOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Rewrapped) != 4 || sum.Rewrapped[0].Outcome != WouldRewrap {
		t.Fatalf("dry run: %+v", sum.Rewrapped)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a.ks")); !bytes.Equal(got, before) {
		t.Fatal("a dry run changed a message")
	}
}
