package gate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// A long-running Store follows a policy.json replaced by another process
// within time.Second, and keeps the last good policy when the new file
// is broken.
func TestStoreFollowsReplacedPolicy(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, allowAllBut(policy.ActionListKeys))
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s, err := keystore.Open(dir, keystore.OpenOptions{Principal: alice, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	replace := func(doc string) {
		t.Helper()
		tmp := filepath.Join(dir, "policy.json.new")
		if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "policy.json")); err != nil {
			t.Fatal(err)
		}
	}
	listErr := func() error { _, err := s.ListKeys(ctx); return err }
	if err := listErr(); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("ListKeys under the first policy: %v", err)
	}

	replace(allowAllBut(policy.ActionDescribeKey))
	if err := listErr(); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("policy changed before the recheck interval: %v", err)
	}
	now = now.Add(time.Second)
	if err := listErr(); err != nil {
		t.Fatalf("ListKeys after the new policy allowed it: %v", err)
	}

	replace(`{"Version":"2012-10-17","Statement":[`) // a broken hand edit
	now = now.Add(time.Second)
	if err := listErr(); err != nil {
		t.Fatalf("broken policy.json replaced the good one in force: %v", err)
	}

	replace(allowAllBut(policy.ActionListKeys))
	now = now.Add(time.Second)
	if err := listErr(); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("a revoking policy was not followed: %v", err)
	}
}

// A long-running Store follows group membership changed in keystore.json
// by another process.
func TestStoreFollowsPrincipalsChange(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"group:ops","Action":"keystack:ListKeys","Resource":"*"}]}`)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	bob, err := keystore.Open(dir, keystore.OpenOptions{Principal: "user:bob", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := bob.ListKeys(ctx); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("bob outside ops: %v", err)
	}
	editConfig(t, dir, func(c *gatewire.Config) {
		c.Principals = map[string]gatewire.PrincipalConfig{"user:bob": {Groups: []string{"ops"}}}
	})
	now = now.Add(time.Second)
	if _, err := bob.ListKeys(ctx); err != nil {
		t.Fatalf("bob added to ops by another process: %v", err)
	}
}
