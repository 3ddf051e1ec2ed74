package gate_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/keystore"
)

const alice = "user:alice"

// newStore initializes an insecure store owned by alice and returns its
// directory.
func newStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: alice})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func openAs(t *testing.T, dir, principal string) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(dir, keystore.OpenOptions{Principal: principal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// storedAnchor returns keystore.json's audit anchor.
func storedAnchor(t *testing.T, dir string) gate.AuditAnchor {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "keystore.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c gate.Config
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.AuditAnchor == nil {
		t.Fatal("keystore.json has no audit anchor")
	}
	return *c.AuditAnchor
}

// TestAuditAnchorLongRunning: a Store that stays open moves the anchor
// while it records, not only when it closes.
func TestAuditAnchorLongRunning(t *testing.T) {
	ctx := context.Background()
	dir := newStore(t)
	before := storedAnchor(t, dir)
	defer gate.SetAnchorEvery(0)()
	s := openAs(t, dir, alice)
	deadline := time.Now().Add(5 * time.Second)
	for storedAnchor(t, dir).Seq <= before.Seq {
		if time.Now().After(deadline) {
			t.Fatalf("anchor still %+v after 5s of decisions from an open store", storedAnchor(t, dir))
		}
		if _, err := s.ListKeys(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openAs(t, dir, alice).Gate().VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFileAuditSetAside: setting aside a destination without a log moves
// nothing and says so; with one, the log moves under a name saying why.
func TestFileAuditSetAside(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := gate.FileAudit(dir)
	now := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	if name, err := d.SetAside(ctx, "damaged", now); err != nil || name != "" {
		t.Fatalf("SetAside without a log: %q, %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, gate.AuditFile), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	name, err := d.SetAside(ctx, "damaged", now)
	if err != nil || name != "audit.log.damaged-20261202T050000.000000000Z" {
		t.Fatalf("SetAside: %q, %v", name, err)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, gate.AuditFile)); !os.IsNotExist(err) {
		t.Fatalf("audit.log still there after SetAside: %v", err)
	}
}
