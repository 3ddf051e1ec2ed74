package gate_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// TestAuditAnchorAdvancesAtClose: closing a store that recorded decisions
// moves the anchor to the log's closing checkpoint; a store that only
// verified writes nothing, to the log, keystore.json or audit.anchor.
func TestAuditAnchorAdvancesAtClose(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	a0 := storedAnchor(t, dir)
	s, err := keystore.Open(dir, keystore.OpenOptions{Principal: alice})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	a1 := storedAnchor(t, dir)
	fi, err := os.Stat(filepath.Join(dir, gate.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	if a1.Seq <= a0.Seq || a1.Offset != fi.Size() {
		t.Fatalf("anchor %+v after Close, was %+v; log is %d bytes", a1, a0, fi.Size())
	}
	log0, _ := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	meta0, _ := os.ReadFile(filepath.Join(dir, stateFile))
	kept0, _ := os.ReadFile(filepath.Join(dir, gate.AnchorFile))
	v, err := keystore.Open(dir, keystore.OpenOptions{Principal: alice})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Gate().VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	log1, _ := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	meta1, _ := os.ReadFile(filepath.Join(dir, stateFile))
	kept1, _ := os.ReadFile(filepath.Join(dir, gate.AnchorFile))
	if !bytes.Equal(log0, log1) || !bytes.Equal(meta0, meta1) || !bytes.Equal(kept0, kept1) {
		t.Fatal("VerifyAudit wrote to the log, keystore.json or audit.anchor")
	}
}

// TestAuditTruncationRefused: a log cut below the anchor, or an older copy,
// leaves the store refusing every operation with gate.ErrAuditDamaged until
// ResetAuditAnchor, which keeps the damaged log and starts a verified one.
func TestAuditTruncationRefused(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	path := filepath.Join(dir, gate.AuditFile)
	a := storedAnchor(t, dir)
	if err := os.Truncate(path, a.Offset-1); err != nil {
		t.Fatal(err)
	}
	s := openAs(t, dir, alice)
	if _, err := s.ListKeys(ctx); !errors.Is(err, gate.ErrAuditDamaged) || !errors.Is(err, audit.ErrTruncated) || !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("ListKeys on a cut log: %v", err)
	}
	if _, err := s.Gate().VerifyAudit(ctx); !errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("VerifyAudit on a cut log: %v", err)
	}
	if _, err := s.Gate().AuditCheckpoint(ctx); err == nil {
		t.Fatal("AuditCheckpoint blessed a cut log")
	}
	moved, err := s.Gate().ResetAuditAnchor(ctx)
	if err != nil || !strings.HasPrefix(moved, gate.AuditFile+".damaged-") {
		t.Fatalf("ResetAuditAnchor: %q %v", moved, err)
	}
	if _, err := os.Stat(filepath.Join(dir, moved)); err != nil {
		t.Fatalf("damaged log not kept: %v", err)
	}
	if _, err := s.ListKeys(ctx); err != nil {
		t.Fatalf("ListKeys after reset: %v", err)
	}
	rep, err := s.Gate().VerifyAudit(ctx)
	if err != nil || rep.Records < 1 {
		t.Fatalf("VerifyAudit after reset: %+v %v", rep, err)
	}
	if got := storedAnchor(t, dir); got.Epoch != a.Epoch+1 || got.Seq == 0 {
		t.Fatalf("anchor after reset: %+v", got)
	}
	notes := 0
	for e := range queryAll(t, dir, audit.Filter{Action: "keystack:ResetAuditAnchor"}) {
		if e.Type == audit.TypeNote && e.Principal == alice && strings.Contains(e.Reason, moved) {
			notes++
		}
	}
	if notes != 1 {
		t.Fatalf("%d reset notes naming %s", notes, moved)
	}
}

// TestAuditStaleEpoch: a store that held the log from before a reset cannot
// move the new log's anchor when it closes.
func TestAuditStaleEpoch(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	old := openAs(t, dir, alice)
	for range 5 {
		if _, err := old.ListKeys(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r := openAs(t, dir, alice)
	if _, err := r.Gate().ResetAuditAnchor(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := storedAnchor(t, dir)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if got := storedAnchor(t, dir); got != want {
		t.Fatalf("a store from before the reset moved the anchor: %+v, want %+v", got, want)
	}
	if _, err := openAs(t, dir, alice).ListKeys(ctx); err != nil {
		t.Fatalf("store after reset: %v", err)
	}
}

// TestAuditCheckpointExport: an exported anchor pins the log even after
// the store's anchor and the log are both rolled back, as by someone
// holding the audit key.
func TestAuditCheckpointExport(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	path, meta, kept := filepath.Join(dir, gate.AuditFile), filepath.Join(dir, stateFile), filepath.Join(dir, gate.AnchorFile)
	oldLog, _ := os.ReadFile(path)
	oldMeta, _ := os.ReadFile(meta)
	oldKept, _ := os.ReadFile(kept)
	s := openAs(t, dir, alice)
	a, err := s.Gate().AuditCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Authentic(audit.Key{MAC: storedConfig(t, dir).AuditKey}) || storedAnchor(t, dir).Seq != a.Seq {
		t.Fatalf("exported anchor %+v, stored %+v", a, storedAnchor(t, dir))
	}
	if _, err := s.Gate().VerifyAudit(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, oldLog, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(meta, oldMeta, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kept, oldKept, 0o600); err != nil {
		t.Fatal(err)
	}
	v := openAs(t, dir, alice)
	if _, err := v.Gate().VerifyAudit(ctx); err != nil {
		t.Fatalf("rolled-back log against its rolled-back anchor: %v", err)
	}
	if _, err := v.Gate().VerifyAudit(ctx, a); !errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("rolled-back log against the exported anchor: %v", err)
	}
}

// TestAuditLegacyLog: a store from before anchors keeps its old log (made
// with an unkeyed chain) under a name saying so and starts a new one.
func TestAuditLegacyLog(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	editConfig(t, dir, func(c *gatewire.Config) { c.AuditAnchor = nil })
	legacy := []byte(`{"time":"2025-01-01T00:00:00Z","seq":1,"type":"op","prev":"00","hash":"00"}` + "\n")
	if err := os.WriteFile(filepath.Join(dir, gate.AuditFile), legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	st := openAs(t, dir, alice)
	if _, err := st.ListKeys(ctx); err != nil {
		t.Fatalf("ListKeys on a store from before anchors: %v", err)
	}
	kept, _ := filepath.Glob(filepath.Join(dir, gate.AuditFile+".unauthenticated-*"))
	if len(kept) != 1 {
		t.Fatalf("old log kept as %v", kept)
	}
	if data, _ := os.ReadFile(kept[0]); !bytes.Equal(data, legacy) {
		t.Fatal("old log changed")
	}
	if _, err := st.Gate().VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAuditInitSetsAsideOldLog: init in a directory that holds a log of an
// earlier store does not inherit it.
func TestAuditInitSetsAsideOldLog(t *testing.T) {
	dir := newAuthzStore(t, "")
	if err := os.Remove(filepath.Join(dir, stateFile)); err != nil {
		t.Fatal(err)
	}
	s, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: alice})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ListKeys(context.Background()); err != nil {
		t.Fatalf("new store over an old log: %v", err)
	}
	if kept, _ := filepath.Glob(filepath.Join(dir, gate.AuditFile+".previous-*")); len(kept) != 1 {
		t.Fatalf("old log kept as %v", kept)
	}
}
