package inventory_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/inventory"
	"github.com/keystack/keystack/internal/rewrap"
	"github.com/keystack/keystack/keystore"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// newStore is an insecure local store holding the local keys names.
func newStore(t *testing.T, names ...string) *keystore.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	if _, err := keystore.Init(dir, keystore.InitOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	st, err := keystore.Open(dir, keystore.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, name := range names {
		if _, err := st.CreateKey(context.Background(), name, keystore.CreateKeyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// sealFile writes a small message under the store's primary of name.
func sealFile(t *testing.T, st *keystore.Store, name, path string) {
	t.Helper()
	kr, err := st.EncryptKeyring(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	writeMessage(t, path, kr, 9)
}

// writeMessage writes a message of size random bytes under kr.
func writeMessage(t *testing.T, path string, kr envelope.Keyring, size int) {
	t.Helper()
	msg, err := envelope.EncryptBytes(context.Background(), make([]byte, size), kr, envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, msg, 0o600); err != nil {
		t.Fatal(err)
	}
}

func versionOf(t *testing.T, st *keystore.Store, name string, v int) keystore.VersionInfo {
	t.Helper()
	ki, err := st.DescribeKey(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, vi := range ki.Versions {
		if vi.Version == v {
			return vi
		}
	}
	t.Fatalf("%s has no version %d", name, v)
	return keystore.VersionInfo{}
}

func TestRetireRefusedUntilRewrapped(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "k")
	dir := t.TempDir()
	sealFile(t, st, "k", filepath.Join(dir, "a.enc"))
	sealFile(t, st, "k", filepath.Join(dir, "b.enc"))
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a message"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RotateKey(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Retire(ctx, st, "k", 1, []string{dir}, false, week)
	var inUse *inventory.VersionInUseError
	if !errors.Is(err, inventory.ErrVersionInUse) || !errors.As(err, &inUse) || inUse.Messages != 2 || inUse.Version != 1 {
		t.Fatalf("Retire while in use: %v", err)
	}
	if inv == nil || inv.Uses("k", 1) != 2 || len(inv.Skipped) != 1 {
		t.Fatalf("inventory: %+v", inv)
	}
	if s := versionOf(t, st, "k", 1).State; s != keystore.StateDecryptOnly {
		t.Fatalf("refused retirement changed the version to %s", s)
	}

	from, err := st.DecryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	to, err := st.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := rewrap.RewrapPaths(ctx, []string{dir}, rewrap.RewrapOptions{From: from, To: to})
	if err != nil || len(sum.Rewrapped) != 2 {
		t.Fatalf("rewrap: %+v, %v", sum, err)
	}
	inv, err = inventory.Retire(ctx, st, "k", 1, []string{dir}, false, week)
	if err != nil {
		t.Fatalf("Retire after rewrap: %v", err)
	}
	if inv.Uses("k", 1) != 0 || inv.Uses("k", 2) != 2 {
		t.Fatalf("inventory after rewrap: %+v", inv)
	}
	if s := versionOf(t, st, "k", 1).State; s != keystore.StatePendingDestruction {
		t.Fatalf("retired version is %s", s)
	}
}

func TestRetireForceAndRefusals(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, "k")
	dir := t.TempDir()
	sealFile(t, st, "k", filepath.Join(dir, "a.enc"))
	if _, err := st.RotateKey(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.Retire(ctx, st, "k", 2, []string{dir}, true, week); !errors.Is(err, keystore.ErrIllegalTransition) {
		t.Fatalf("retiring the primary: %v", err)
	}
	if _, err := inventory.Retire(ctx, st, "k", 1, []string{dir}, true, day); !errors.Is(err, keystore.ErrInvalidOptions) {
		t.Fatalf("waiting below the minimum: %v", err)
	}
	if _, err := inventory.Retire(ctx, st, "k", 9, []string{dir}, true, week); !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	inv, err := inventory.Retire(ctx, st, "k", 1, []string{dir}, true, week)
	if err != nil || inv.Uses("k", 1) != 1 {
		t.Fatalf("forced Retire: %+v, %v", inv, err)
	}
	if vi := versionOf(t, st, "k", 1); vi.State != keystore.StatePendingDestruction || vi.History[len(vi.History)-1].Reason == "" {
		t.Fatalf("forced retirement: %+v", vi)
	}
}
