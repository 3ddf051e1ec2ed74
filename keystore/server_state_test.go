package keystore

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// The key server's actions join TestAuthzEachAction's table: each is
// refused exactly when denied.
func init() {
	authzOps = append(authzOps,
		authzOp{policy.ActionCreateAlias, func(ctx context.Context, s *Store, _ []byte) error {
			return ops(s).CreateAlias(ctx, "alias/made", "k")
		}, ""},
		authzOp{policy.ActionDeleteAlias, func(ctx context.Context, s *Store, _ []byte) error {
			if err := ops(s).CreateAlias(ctx, "alias/gone", "k"); err != nil {
				return err
			}
			return ops(s).DeleteAlias(ctx, "alias/gone")
		}, policy.ActionCreateAlias},
		authzOp{policy.ActionTagResource, func(ctx context.Context, s *Store, _ []byte) error {
			return ops(s).TagKey(ctx, "k", map[string]string{"team": "a"})
		}, ""},
		authzOp{policy.ActionUntagResource, func(ctx context.Context, s *Store, _ []byte) error {
			return ops(s).UntagKey(ctx, "k", []string{"team"})
		}, ""},
		authzOp{policy.ActionGenerateRandom, func(ctx context.Context, s *Store, _ []byte) error {
			_, err := ops(s).GenerateRandom(ctx, 16)
			return err
		}, ""},
		authzOp{policy.ActionManageCredentials, func(ctx context.Context, s *Store, _ []byte) error {
			c, err := s.CreateCredential(ctx, "service:x")
			if err != nil {
				return err
			}
			return s.RevokeCredential(ctx, c.AccessKeyID)
		}, ""},
		// The key server's break-glass reset, for alice as the directory's
		// owner on the Unix socket; the policy under test is put back.
		authzOp{policy.ActionResetPolicy, func(ctx context.Context, s *Store, _ []byte) error {
			path := filepath.Join(s.Dir(), policyFile)
			data, err := os.ReadFile(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if _, err := s.Gate().ResetPolicyFor(gate.WithCaller(ctx, gate.Caller{Principal: s.principal, AuthMethod: "unix"}), true); err != nil {
				return err
			}
			if data == nil { // the owner-only policy in force is the default
				return os.Remove(path)
			}
			cur, err := policy.Parse(data) // the owner, alice, may put it back
			if err != nil {
				return err
			}
			return s.Gate().PutPolicy(ctx, cur, policy.PutOptions{BypassLockoutSafetyCheck: true})
		}, ""},
	)
}

func TestSealDataRoundTripAndBinding(t *testing.T) {
	ctx := context.Background()
	s := openAs(t, newAuthzStore(t, ""), alice)
	d, err := ops(s).SealData(ctx, policy.ActionEncrypt, "k", []byte("secret"), fixed([]byte("aad")), testEC)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != 2 {
		t.Errorf("sealed under version %d, want the primary 2", d.Version)
	}
	pt, err := ops(s).OpenData(ctx, policy.ActionDecrypt, "k", *d, []byte("aad"), testEC)
	if err != nil || !bytes.Equal(pt, []byte("secret")) {
		t.Fatalf("open: %q, %v", pt, err)
	}
	if _, err := ops(s).OpenData(ctx, policy.ActionDecrypt, "k", *d, []byte("other"), testEC); !errors.Is(err, keyring.ErrUnwrapFailed) {
		t.Errorf("other aad: %v, want keyring.ErrUnwrapFailed", err)
	}
	if _, err := ops(s).OpenData(ctx, policy.ActionDecrypt, "x", *d, []byte("aad"), testEC); !errors.Is(err, keyring.ErrUnwrapFailed) {
		t.Errorf("other key: %v, want keyring.ErrUnwrapFailed", err)
	}
	if _, err := ops(s).SealData(ctx, policy.ActionDecrypt, "k", nil, fixed(nil), nil); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("SealData with Decrypt: %v", err)
	}
}

func TestServerKeyStates(t *testing.T) {
	ctx := context.Background()
	s := openAs(t, newAuthzStore(t, ""), alice)
	d, err := ops(s).SealData(ctx, policy.ActionEncrypt, "k", []byte("p"), fixed(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ops(s).SetKeyEnabled(ctx, "k", false); err != nil {
		t.Fatal(err)
	}
	if _, err := ops(s).SealData(ctx, policy.ActionEncrypt, "k", []byte("p"), fixed(nil), nil); !errors.Is(err, serverstore.ErrKeyState) {
		t.Errorf("disabled key seals: %v", err)
	}
	if _, err := ops(s).OpenData(ctx, policy.ActionDecrypt, "k", *d, nil, nil); !errors.Is(err, serverstore.ErrKeyState) {
		t.Errorf("disabled key opens: %v", err)
	}
	if _, err := ops(s).ScheduleKeyDeletion(ctx, "k", 6); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("6 days: %v", err)
	}
	at, err := ops(s).ScheduleKeyDeletion(ctx, "k", 7)
	if err != nil || at.IsZero() {
		t.Fatal(at, err)
	}
	if st, _ := ops(s).ServerKey(context.Background(), "k"); st.State != serverstore.PendingDeletion || !st.DeletionDate.Equal(at) {
		t.Errorf("state %+v", st)
	}
	if err := ops(s).SetKeyEnabled(ctx, "k", true); !errors.Is(err, serverstore.ErrKeyState) {
		t.Errorf("enable while pending deletion: %v", err)
	}
	if err := ops(s).CancelKeyDeletion(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if st, _ := ops(s).ServerKey(context.Background(), "k"); st.State != serverstore.Disabled {
		t.Errorf("after cancel: %s, want Disabled as in KMS", st.State)
	}
	if err := ops(s).SetKeyEnabled(ctx, "k", true); err != nil {
		t.Fatal(err)
	}
	if _, err := ops(s).OpenData(ctx, policy.ActionDecrypt, "k", *d, nil, nil); err != nil {
		t.Errorf("re-enabled key: %v", err)
	}
}

func TestAliasesAndTags(t *testing.T) {
	ctx := context.Background()
	s := openAs(t, newAuthzStore(t, ""), alice)
	for _, bad := range []string{"payments", "alias/", "alias/aws/x", "alias/a b", "alias/" + strings.Repeat("a", 251)} {
		if err := ops(s).CreateAlias(ctx, bad, "k"); !errors.Is(err, serverstore.ErrInvalidAlias) {
			t.Errorf("alias %q: %v", bad, err)
		}
	}
	if err := ops(s).CreateAlias(ctx, "alias/pay", "k"); err != nil {
		t.Fatal(err)
	}
	if err := ops(s).CreateAlias(ctx, "alias/pay", "x"); !errors.Is(err, serverstore.ErrAliasExists) {
		t.Errorf("duplicate alias: %v", err)
	}
	if err := ops(s).CreateAlias(ctx, "alias/none", "nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("alias to a missing key: %v", err)
	}
	if name, err := ops(s).ResolveAlias(context.Background(), "alias/pay"); name != "k" || err != nil {
		t.Errorf("resolve: %q %v", name, err)
	}
	if err := ops(s).DeleteAlias(ctx, "alias/pay"); err != nil {
		t.Fatal(err)
	}
	if _, err := ops(s).ResolveAlias(context.Background(), "alias/pay"); !errors.Is(err, serverstore.ErrAliasNotFound) {
		t.Errorf("deleted alias resolves: %v", err)
	}
	if err := ops(s).TagKey(ctx, "k", map[string]string{"team": "a", "env": "prod"}); err != nil {
		t.Fatal(err)
	}
	if err := ops(s).UntagKey(ctx, "k", []string{"env"}); err != nil {
		t.Fatal(err)
	}
	if tags, _ := ops(s).KeyTags(ctx, "k"); len(tags) != 1 || tags["team"] != "a" {
		t.Errorf("tags %v", tags)
	}
}

func TestCredentials(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := Init(dir, InitOptions{Passphrase: []byte("pw"), Owner: alice, KDF: "scrypt"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateCredential(ctx, "service:billing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCredential(ctx, "service:billing"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCredential(ctx, "service:billing"); !errors.Is(err, ErrCredentialLimit) {
		t.Errorf("third credential: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, metaFile))
	if bytes.Contains(raw, []byte(a.Secret)) {
		t.Error("keystore.json holds the secret in clear")
	}
	got, err := ops(s).LookupCredential(context.Background(), a.AccessKeyID)
	if err != nil || got.Secret != a.Secret || got.Principal != "service:billing" {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	list, err := s.ListCredentials(ctx, "service:billing")
	if err != nil || len(list) != 2 || list[0].Secret != "" {
		t.Errorf("list: %+v %v", list, err)
	}
	if err := s.RevokeCredential(ctx, a.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := ops(s).LookupCredential(context.Background(), a.AccessKeyID); !errors.Is(err, ErrCredentialNotFound) {
		t.Errorf("revoked credential: %v", err)
	}
	// Another principal may neither list nor revoke billing's keys.
	bctx := gate.WithCaller(ctx, gate.Caller{Principal: "service:billing", AuthMethod: "sigv4"})
	if _, err := s.ListCredentials(bctx, "service:billing"); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("billing lists its credentials under the owner-only policy: %v", err)
	}
	if _, err := s.CreateCredential(bctx, "service:billing"); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("billing issues itself a credential: %v", err)
	}
}

// TestCallerScope: a decision made for a Caller is made and audited for
// it, with its request ID, method and source, not for the Store's principal.
func TestCallerScope(t *testing.T) {
	pol := `{"Version":"2012-10-17","Statement":[
	 {"Sid":"Owner","Effect":"Allow","Principal":"user:alice","Action":"keystack:*","Resource":"*"},
	 {"Sid":"Svc","Effect":"Allow","Principal":"service:billing","Action":"keystack:Encrypt","Resource":"key/k",
	  "Condition":{"StringEquals":{"keystack:AuthMethod":"sigv4","keystack:ResourceTag/team":"pay"}}}]}`
	dir := newAuthzStore(t, pol)
	s := openAs(t, dir, alice)
	ctx := context.Background()
	c := gate.Caller{Principal: "service:billing", AuthMethod: "sigv4", SourceIP: netip.MustParseAddr("10.1.2.3"),
		RequestID: "req-123", ResourceTags: map[string]string{"team": "pay"}}
	if _, err := ops(s).SealData(gate.WithCaller(ctx, c), policy.ActionEncrypt, "k", []byte("p"), fixed(nil), nil); err != nil {
		t.Fatalf("allowed caller: %v", err)
	}
	c.AuthMethod = "unix"
	if _, err := ops(s).SealData(gate.WithCaller(ctx, c), policy.ActionEncrypt, "k", []byte("p"), fixed(nil), nil); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("other auth method: %v", err)
	}
	c.AuthMethod, c.ResourceTags = "sigv4", map[string]string{"team": "other"}
	if _, err := ops(s).SealData(gate.WithCaller(ctx, c), policy.ActionEncrypt, "k", []byte("p"), fixed(nil), nil); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("other resource tag: %v", err)
	}
	_ = s.Close()
	log, _ := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	want := `"principal":"service:billing","action":"keystack:Encrypt","resource":"key/k","key_version":2,"decision":"Allow","statements":["Svc"],"request_id":"req-123","auth_method":"sigv4","source":"10.1.2.3"`
	if !bytes.Contains(log, []byte(want)) {
		t.Errorf("audit log lacks the caller's record %s", want)
	}
}

// TestDeleteDueKeys: a key whose deletion date has passed is erased with
// its aliases; one still pending, or whose deletion was cancelled, stays.
func TestDeleteDueKeys(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	now := time.Now()
	s, err := Open(dir, OpenOptions{Principal: alice, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, days := range map[string]int{"k": 7, "e": 20, "x": 7} {
		if _, err := ops(s).ScheduleKeyDeletion(ctx, k, days); err != nil {
			t.Fatal(err)
		}
	}
	if err := ops(s).CreateAlias(ctx, "alias/doomed", "k"); err != nil {
		t.Fatal(err)
	}
	if err := ops(s).CancelKeyDeletion(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if got, err := ops(s).DeleteDueKeys(ctx); err != nil || len(got) != 0 {
		t.Fatalf("nothing is due yet: %v %v", got, err)
	}
	now = now.Add(8 * 24 * time.Hour) // k (7 days) is due, e (20) is not
	got, err := ops(s).DeleteDueKeys(ctx)
	if err != nil || len(got) != 1 || got[0] != "k" {
		t.Fatalf("deleted %v, %v; want [k]", got, err)
	}
	if _, err := s.DescribeKey(ctx, "k"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("deleted key: %v", err)
	}
	if _, err := ops(s).ResolveAlias(context.Background(), "alias/doomed"); !errors.Is(err, serverstore.ErrAliasNotFound) {
		t.Errorf("alias of a deleted key: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, metaFile))
	if bytes.Contains(raw, []byte(`"k"`)) {
		t.Error("keystore.json still names the deleted key")
	}
	for _, k := range []string{"e", "x"} {
		if _, err := s.DescribeKey(ctx, k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

// TestCredentialPrincipal: a credential names one caller, a user or a
// service; groups, patterns and malformed names are refused.
func TestCredentialPrincipal(t *testing.T) {
	for _, p := range []string{"user:alice", "service:billing", "service:spiffe://example.org/ns/a"} {
		if !credentialPrincipal(p) {
			t.Errorf("%q refused", p)
		}
	}
	for _, p := range []string{"", "bogus", "*", "user:", "service:*", "user:a?", "group:admins", "role:x", "user:a\nb"} {
		if credentialPrincipal(p) {
			t.Errorf("%q accepted", p)
		}
	}
}

// ops is s's server operations, as serverstore.Of returns them.
func ops(s *Store) serverOps { return serverOps{s} }

// fixed is an additional-data function that ignores the version.
func fixed(aad []byte) func(int) []byte { return func(int) []byte { return aad } }

// TestKMSStateRefusesLocalUse: a key the KMS API disabled or scheduled for
// deletion serves no local encryption or decryption either (the CLI's,
// the SDK's), with the reason; enabled again, it serves both.
func TestKMSStateRefusesLocalUse(t *testing.T) {
	ctx := context.Background()
	s := openAs(t, newAuthzStore(t, ""), alice)
	encrypt := func() ([]byte, error) {
		kr, err := s.EncryptKeyring(ctx, "k")
		if err != nil {
			return nil, err
		}
		return envelope.EncryptBytes(ctx, []byte("p"), kr, envelope.EncryptOptions{})
	}
	decrypt := func(msg []byte, keys ...string) error {
		kr, err := s.DecryptKeyring(ctx, keys...)
		if err == nil {
			_, _, err = envelope.DecryptBytes(ctx, msg, kr, envelope.DecryptOptions{})
		}
		return err
	}
	msg, err := encrypt()
	if err != nil {
		t.Fatal(err)
	}
	if err := ops(s).SetKeyEnabled(ctx, "k", false); err != nil {
		t.Fatal(err)
	}
	if _, err := encrypt(); !errors.Is(err, ErrKeyDisabled) || !strings.Contains(err.Error(), "disabled through the KMS API") {
		t.Errorf("encrypt under a disabled key: %v", err)
	}
	if err := decrypt(msg, "k"); !errors.Is(err, ErrKeyDisabled) {
		t.Errorf("decrypt with the disabled key named: %v", err)
	}
	if err := decrypt(msg); !errors.Is(err, ErrKeyDisabled) || !strings.Contains(err.Error(), "disabled through the KMS API") {
		t.Errorf("decrypt with every key: %v", err)
	}
	if err := ops(s).SetKeyEnabled(ctx, "k", true); err != nil {
		t.Fatal(err)
	}
	if _, err := ops(s).ScheduleKeyDeletion(ctx, "k", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := encrypt(); !errors.Is(err, ErrKeyDisabled) || !strings.Contains(err.Error(), "pending deletion") {
		t.Errorf("encrypt under a key pending deletion: %v", err)
	}
	if err := decrypt(msg); !errors.Is(err, ErrKeyDisabled) || !strings.Contains(err.Error(), "pending deletion") {
		t.Errorf("decrypt under a key pending deletion: %v", err)
	}
	if err := ops(s).CancelKeyDeletion(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := ops(s).SetKeyEnabled(ctx, "k", true); err != nil {
		t.Fatal(err)
	}
	if _, err := encrypt(); err != nil {
		t.Errorf("encrypt after EnableKey: %v", err)
	}
	if err := decrypt(msg); err != nil {
		t.Errorf("decrypt after EnableKey: %v", err)
	}
}
