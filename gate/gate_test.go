package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/testhook"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

const alice = "user:alice"

func TestMain(m *testing.M) {
	testhook.CheapKDF = true // sealed stores unlock with argon2id at the least cost
	os.Exit(m.Run())
}

// stateFile is the store's state document in its directory.
const stateFile = "keystore.json"

// testPass is the passphrase of the sealed stores these tests make.
const testPass = "correct horse battery staple"

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

// newAuthzStore initializes an insecure store owned by alice with keys
// k, e and x, each at version 2 (version 1 decrypt-only), and e/v1
// disabled. It writes policyJSON as policy.json when not empty and returns
// the directory.
func newAuthzStore(t *testing.T, policyJSON string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: alice})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"k", "e", "x"} {
		if _, err := s.CreateKey(ctx, name, keystore.CreateKeyOptions{Description: "test key " + name}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RotateKey(ctx, name, "setup"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DisableVersion(ctx, "e", 1, "setup"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if policyJSON != "" {
		if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(policyJSON), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// allowAllBut is a policy allowing alice everything except action.
func allowAllBut(action string) string {
	return `{"Version":"2012-10-17","Statement":[
	 {"Sid":"All","Effect":"Allow","Principal":"user:alice","Action":"keystack:*","Resource":"*"},
	 {"Sid":"Not","Effect":"Deny","Principal":"user:alice","Action":"` + action + `","Resource":"*"}]}`
}

// storedConfig returns the access-control part of keystore.json.
func storedConfig(t *testing.T, dir string) gatewire.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	var c gatewire.Config
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// configFields are keystore.json's top-level fields that gatewire.Config holds.
var configFields = []string{"owner", "trust_principal_env", "principals", "audit_key", "audit_sync", "audit_anchor"}

// editConfig changes the access-control part of keystore.json as another
// process would: the rest of the file is kept, and the new file replaces
// the old by rename.
func editConfig(t *testing.T, dir string, fn func(*gatewire.Config)) {
	t.Helper()
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	c := storedConfig(t, dir)
	fn(&c)
	cj, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(cj, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range configFields {
		delete(doc, k)
	}
	maps.Copy(doc, fields)
	if data, err = json.MarshalIndent(doc, "", "  "); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".edit"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// queryAll yields the entries of the store's audit log that f selects.
func queryAll(t *testing.T, dir string, f audit.Filter) func(func(audit.Entry) bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	return func(yield func(audit.Entry) bool) {
		for e, err := range audit.Query(bytes.NewReader(data), f) {
			if err != nil {
				t.Fatal(err)
			}
			if !yield(e) {
				return
			}
		}
	}
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

// storedAnchor returns the store's audit anchor: keystore.json's, or the
// one kept in audit.anchor when that is ahead. The Detached mark is left
// out, so that anchors compare by position.
func storedAnchor(t *testing.T, dir string) gatewire.AuditAnchor {
	t.Helper()
	c := storedConfig(t, dir)
	if c.AuditAnchor == nil {
		t.Fatal("keystore.json has no audit anchor")
	}
	a := *c.AuditAnchor
	a.Detached = false
	if kept, err := gate.KeptAnchor(dir, c.AuditKey); err == nil && gate.AnchorAhead(kept, a) {
		return kept
	}
	return a
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

// countingAudit is a destination that keeps its records in another
// directory (a real file log) and counts the records appended through it.
type countingAudit struct {
	gate.AuditDestination
	records *atomic.Int64
}

func (c countingAudit) Open(ctx context.Context, opts audit.Options) (gate.AuditSink, error) {
	s, err := c.AuditDestination.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	return countingSink{s, c.records}, nil
}

type countingSink struct {
	gate.AuditSink
	records *atomic.Int64
}

func (c countingSink) Append(ctx context.Context, rs ...audit.Record) error {
	c.records.Add(int64(len(rs)))
	return c.AuditSink.Append(ctx, rs...)
}

// TestOtherAuditDestination: a store opened with OpenOptions.Audit records
// every decision there, and nothing in its directory's audit.log; the
// records verify with the store's audit key and name the decision.
func TestOtherAuditDestination(t *testing.T) {
	ctx := context.Background()
	dir := newStore(t)
	before, _ := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	elsewhere := t.TempDir()
	var n atomic.Int64
	s, err := keystore.Open(dir, keystore.OpenOptions{Principal: alice, Audit: countingAudit{gate.FileAudit(elsewhere), &n}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Gate().VerifyAudit(ctx); err != nil {
		t.Fatalf("VerifyAudit of the other destination: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d records appended through the destination, want 1 (the ListKeys decision)", n.Load())
	}
	after, _ := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	if string(after) != string(before) {
		t.Fatalf("the store directory's audit.log changed:\n%s", after)
	}
	f, err := os.Open(filepath.Join(elsewhere, gate.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found int
	for e, err := range audit.Query(f, audit.Filter{Action: policy.ActionListKeys}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Principal == alice && e.Decision == string(policy.Allow) {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("%d ListKeys decisions for alice in the other destination, want 1", found)
	}
}
