package gate_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// lockedOut is a policy under which nobody, the owner included, may do
// anything but bob's one encryption.
const lockedOut = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":"user:bob","Action":"keystack:Encrypt","Resource":"key/k"}]}`

// TestResetPolicyPassphrase: a sealed store's policy is reset with the
// passphrase whatever the policy says; a wrong passphrase is refused and
// leaves the policy alone.
func TestResetPolicyPassphrase(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := keystore.Init(dir, keystore.InitOptions{Passphrase: []byte(testPass), Owner: alice})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(lockedOut))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Gate().PutPolicy(ctx, p, policy.PutOptions{}); !errors.Is(err, policy.ErrLockout) {
		t.Fatalf("lockout put: %v, want ErrLockout", err)
	}
	if err := s.Gate().PutPolicy(ctx, p, policy.PutOptions{BypassLockoutSafetyCheck: true}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	open := func(pass string) *keystore.Store {
		st, err := keystore.Open(dir, keystore.OpenOptions{Principal: alice, Passphrase: func() ([]byte, error) { return []byte(pass), nil }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	wrong := open("wrong")
	if _, err := wrong.Gate().ResetPolicy(ctx); !errors.Is(err, keystore.ErrBadPassphrase) {
		t.Fatalf("reset with a wrong passphrase: %v", err)
	}
	if _, err := open(testPass).Gate().GetPolicy(ctx); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("the refused reset changed the policy: %v", err)
	}
	owner, err := open(testPass).Gate().ResetPolicy(ctx)
	if err != nil || owner != alice {
		t.Fatalf("reset: %q %v", owner, err)
	}
	got, err := open(testPass).Gate().GetPolicy(ctx)
	if err != nil || len(got.Statement) != 1 || got.Statement[0].Sid != "DefaultOwnerFullAccess" {
		t.Fatalf("after reset: %+v %v", got, err)
	}
}

// TestResetPolicyInsecureOwnerOnly: without a passphrase only the owner
// principal may reset.
func TestResetPolicyInsecureOwnerOnly(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, lockedOut)
	if _, err := openAs(t, dir, "user:bob").Gate().ResetPolicy(ctx); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("bob resets: %v", err)
	}
	if _, err := openAs(t, dir, alice).Gate().ResetPolicy(ctx); err != nil {
		t.Fatalf("owner resets: %v", err)
	}
	if _, err := openAs(t, dir, alice).ListKeys(ctx); err != nil {
		t.Fatalf("owner after reset: %v", err)
	}
}

// TestSimulateMatchesStore: SimulatePolicy decides as the store enforces,
// with the principal's groups and tags from keystore.json and tags in the
// request (enforcement merges them; simulation used to replace them).
func TestSimulateMatchesStore(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"user:alice","Action":"keystack:*","Resource":"*"},
	 {"Sid":"Ops","Effect":"Allow","Principal":"group:ops","Action":"keystack:ListKeys","Resource":"*","Condition":{"StringEquals":{"keystack:PrincipalTag/TEAM":"pay"}}},
	 {"Sid":"Lvl","Effect":"Allow","Principal":"*","Action":"keystack:DescribeKey","Resource":"key/*","Condition":{"StringEquals":{"keystack:principaltag/level":"2","keystack:PrincipalTag/team":"pay"}}}]}`)
	editConfig(t, dir, func(c *gatewire.Config) {
		c.Principals = map[string]gatewire.PrincipalConfig{"user:bob": {Groups: []string{"ops"}, Tags: map[string]string{"team": "pay"}}}
	})
	sim, bob := openAs(t, dir, alice), openAs(t, dir, "user:bob")
	for _, r := range []policy.Request{
		{Principal: "user:bob", Action: policy.ActionListKeys, Resource: "key/*"},
		{Principal: "user:bob", Action: policy.ActionDescribeKey, Resource: "key/k", PrincipalTags: map[string]string{"level": "2"}},
		{Principal: "user:bob", Action: policy.ActionDescribeKey, Resource: "key/k"},
		{Principal: "user:carol", Action: policy.ActionListKeys, Resource: "key/*"},
	} {
		d, err := sim.Gate().SimulatePolicy(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		enforced := gate.Authorize(ctx, bob.Gate(), r)
		if d.Allowed() != (enforced == nil) {
			t.Errorf("%+v: simulate %v, enforcement %v", r, d.Effect, enforced)
		}
	}
}

// TestResetPolicyFor: the key server's reset needs both the policy's
// keystack:ResetPolicy for the Caller and local (the directory's owner on
// the Unix socket); a refusal leaves the policy alone, and every attempt
// is recorded for the Caller.
func TestResetPolicyFor(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"user:bob","Action":["keystack:ResetPolicy","keystack:Encrypt"],"Resource":"*"},
	 {"Effect":"Allow","Principal":"user:carol","Action":"keystack:Encrypt","Resource":"*"}]}`)
	st := openAs(t, dir, alice)
	as := func(p string) context.Context {
		return gate.WithCaller(ctx, gate.Caller{Principal: p, AuthMethod: "unix", RequestID: "r-" + p})
	}
	for _, tc := range []struct {
		who   string
		local bool
	}{{"user:carol", true}, {"user:bob", false}} {
		if _, err := st.Gate().ResetPolicyFor(as(tc.who), tc.local); !errors.Is(err, policy.ErrAccessDenied) {
			t.Fatalf("%s local=%v: %v, want ErrAccessDenied", tc.who, tc.local, err)
		}
		if _, err := st.ListKeys(ctx); !errors.Is(err, policy.ErrAccessDenied) {
			t.Fatalf("the refused reset (%s) changed the policy: %v", tc.who, err)
		}
	}
	if _, err := st.Gate().ResetPolicyFor(ctx, true); !errors.Is(err, gate.ErrNotSupported) {
		t.Fatalf("without a Caller: %v", err)
	}
	owner, err := st.Gate().ResetPolicyFor(as("user:bob"), true)
	if err != nil || owner != alice {
		t.Fatalf("bob, local, with the action: %q %v", owner, err)
	}
	if _, err := openAs(t, dir, alice).ListKeys(ctx); err != nil {
		t.Fatalf("owner after reset: %v", err)
	}
	rd, err := openAs(t, dir, alice).Gate().AuditLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []string
	for e, err := range audit.Query(rd, audit.Filter{Action: policy.ActionResetPolicy}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Principal+" "+e.Decision)
	}
	if want := []string{"user:carol Deny", "user:bob Deny", "user:bob Allow"}; !slices.Equal(got, want) {
		t.Fatalf("audited resets %q, want %q", got, want)
	}
}
