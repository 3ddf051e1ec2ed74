package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/policy"
)

const alice = "user:alice"

// newAuthzStore initializes an insecure store owned by alice with keys
// k, e and x, each at version 2 (version 1 decrypt-only), and e/v1
// disabled. It writes policyJSON as policy.json when not empty and returns
// the directory.
func newAuthzStore(t *testing.T, policyJSON string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := Init(dir, InitOptions{Insecure: true, Owner: alice})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"k", "e", "x"} {
		mustCreate(t, s, name)
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
		if err := os.WriteFile(filepath.Join(dir, policyFile), []byte(policyJSON), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func openAs(t *testing.T, dir, principal string) *Store {
	t.Helper()
	s, err := Open(dir, OpenOptions{Principal: principal, MinDestructionWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// allowAllBut is a policy allowing alice everything except action.
func allowAllBut(action string) string {
	return `{"Version":"2012-10-17","Statement":[
	 {"Sid":"All","Effect":"Allow","Principal":"user:alice","Action":"keystack:*","Resource":"*"},
	 {"Sid":"Not","Effect":"Deny","Principal":"user:alice","Action":"` + action + `","Resource":"*"}]}`
}

var testEC = map[string]string{"tenant": "t1"}

func encryptMsg(ctx context.Context, kr envelope.Keyring, ec map[string]string) ([]byte, error) {
	return envelope.EncryptBytes(ctx, []byte("hello"), kr, envelope.EncryptOptions{Context: ec})
}

// sealedMsg is a message under key k, made with full access.
func sealedMsg(t *testing.T, dir string, ec map[string]string) []byte {
	t.Helper()
	s := openAs(t, dir, alice)
	kr, err := s.EncryptKeyring(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := encryptMsg(context.Background(), kr, ec)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// authzOp is one library operation, the action that gates it, and other
// actions it needs too (generating a data key also wraps it; a rewrap
// also encrypts).
type authzOp struct {
	action string
	do     func(ctx context.Context, s *Store, msg []byte) error
	also   string
}

func (op authzOp) needs(action string) bool { return op.action == action || op.also == action }

var authzOps = []authzOp{
	{policy.ActionCreateKey, func(ctx context.Context, s *Store, _ []byte) error {
		_, err := s.CreateKey(ctx, "new", CreateKeyOptions{})
		return err
	}, ""},
	{policy.ActionImportKey, func(ctx context.Context, s *Store, _ []byte) error {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		_, err := s.ImportKey(ctx, "imported", ImportKeyOptions{AESKey: key})
		return err
	}, ""},
	{policy.ActionListKeys, func(ctx context.Context, s *Store, _ []byte) error {
		_, err := s.ListKeys(ctx)
		return err
	}, ""},
	{policy.ActionDescribeKey, func(ctx context.Context, s *Store, _ []byte) error {
		_, err := s.DescribeKey(ctx, "k")
		return err
	}, ""},
	{policy.ActionRotateKey, func(ctx context.Context, s *Store, _ []byte) error {
		_, err := s.RotateKey(ctx, "k", "test")
		return err
	}, ""},
	{policy.ActionDisableKey, func(ctx context.Context, s *Store, _ []byte) error {
		_, err := s.DisableVersion(ctx, "k", 1, "test")
		return err
	}, ""},
	{policy.ActionEnableKey, func(ctx context.Context, s *Store, _ []byte) error {
		_, err := s.EnableVersion(ctx, "e", 1, "test")
		return err
	}, ""},
	{policy.ActionScheduleKeyDeletion, func(ctx context.Context, s *Store, _ []byte) error {
		_, err := s.ScheduleVersionDestruction(ctx, "x", 1, time.Hour, "test")
		return err
	}, ""},
	{policy.ActionGenerateDataKey, func(ctx context.Context, s *Store, _ []byte) error {
		kr, err := s.EncryptKeyring(ctx, "k")
		if err != nil {
			return err
		}
		_, err = encryptMsg(ctx, kr, testEC)
		return err
	}, policy.ActionEncrypt},
	{policy.ActionEncrypt, func(ctx context.Context, s *Store, _ []byte) error {
		// k wraps a data key another keyring generated, as a multi-keyring
		// child does: Encrypt, not GenerateDataKey.
		kr, err := s.EncryptKeyring(ctx, "k")
		if err != nil {
			return err
		}
		m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: testEC,
			DataKey: make([]byte, envelope.SuiteCommitted.DataKeyLen()), PlaintextLength: -1}
		return kr.OnEncrypt(ctx, m)
	}, ""},
	{policy.ActionDecrypt, func(ctx context.Context, s *Store, msg []byte) error {
		kr, err := s.DecryptKeyring(ctx, "k")
		if err != nil {
			return err
		}
		_, _, err = envelope.DecryptBytes(ctx, msg, kr, envelope.DecryptOptions{})
		return err
	}, ""},
	{policy.ActionReWrap, func(ctx context.Context, s *Store, msg []byte) error {
		dec, enc, err := s.RewrapKeyrings(ctx, []string{"k"}, []string{"k"})
		if err != nil {
			return err
		}
		old, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
		if err != nil {
			return err
		}
		_, err = envelope.RewrapHeader(ctx, old, dec, enc, envelope.DecryptOptions{})
		return err
	}, policy.ActionEncrypt},
	{policy.ActionGetPolicy, func(ctx context.Context, s *Store, _ []byte) error {
		_, err := s.Gate().GetPolicy(ctx)
		return err
	}, ""},
	{policy.ActionPutPolicy, func(ctx context.Context, s *Store, _ []byte) error {
		// Allow alice exactly the actions she holds now: nothing new.
		cur, err := policy.DefaultPolicy(alice) // the owner's, without a document
		if doc, rerr := os.ReadFile(filepath.Join(s.Dir(), policyFile)); rerr == nil {
			cur, err = policy.Parse(doc)
		} else if !errors.Is(rerr, os.ErrNotExist) {
			return rerr
		}
		if err != nil {
			return err
		}
		var held policy.Values
		for _, a := range policy.Actions {
			if cur.Evaluate(policy.Request{Principal: alice, Action: a, Resource: "*"}).Allowed() {
				held = append(held, a)
			}
		}
		p, err := policy.New(policy.Version, []policy.Statement{{Effect: policy.Allow,
			Principal: policy.Values{alice}, Action: held, Resource: policy.Values{"*"}}})
		if err != nil {
			return err
		}
		return s.Gate().PutPolicy(ctx, p, policy.PutOptions{})
	}, ""},
	{policy.ActionReadAudit, func(ctx context.Context, s *Store, _ []byte) error {
		r, err := s.Gate().AuditLog(ctx)
		if err != nil {
			return err
		}
		_ = r.Close()
		_, err = s.Gate().VerifyAudit(ctx)
		return err
	}, ""},
}

// TestAuthzEachAction denies one action at a time: exactly the operations
// it gates fail with ErrAccessDenied, and every other one works.
func TestAuthzEachAction(t *testing.T) {
	covered := map[string]bool{}
	for _, denied := range authzOps {
		covered[denied.action] = true
		t.Run(strings.TrimPrefix(denied.action, "keystack:"), func(t *testing.T) {
			t.Parallel() // a store each; mostly waiting on its fsyncs
			ctx := context.Background()
			dir := newAuthzStore(t, "")
			msg := sealedMsg(t, dir, testEC)
			if err := os.WriteFile(filepath.Join(dir, policyFile), []byte(allowAllBut(denied.action)), 0o600); err != nil {
				t.Fatal(err)
			}
			s := openAs(t, dir, alice)
			for _, op := range authzOps {
				err := op.do(ctx, s, msg)
				if op.needs(denied.action) {
					if !errors.Is(err, policy.ErrAccessDenied) {
						t.Errorf("%s denied: got %v, want ErrAccessDenied", op.action, err)
					}
				} else if err != nil {
					t.Errorf("%s (allowed): %v", op.action, err)
				}
			}
		})
	}
	for _, a := range policy.Actions {
		if !covered[a] {
			t.Errorf("action %s has no operation in the table", a)
		}
	}
}

// TestAuthzDefaultPolicy: without policy.json the owner may do everything
// and anybody else nothing.
func TestAuthzDefaultPolicy(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	msg := sealedMsg(t, dir, testEC)
	bob := openAs(t, dir, "user:bob")
	for _, op := range authzOps {
		if err := op.do(ctx, bob, msg); !errors.Is(err, policy.ErrAccessDenied) {
			t.Errorf("bob %s: %v, want ErrAccessDenied", op.action, err)
		}
	}
	s := openAs(t, dir, alice)
	if _, err := s.ListKeys(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAuthzContextCondition: a condition on the encryption context is
// decided per message, on encrypt and on decrypt, by the same keyrings.
func TestAuthzContextCondition(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	other := map[string]string{"tenant": "t2"}
	msgT1, msgT2 := sealedMsg(t, dir, testEC), sealedMsg(t, dir, other)
	pol := `{"Version":"2012-10-17","Statement":[
	 {"Sid":"Manage","Effect":"Allow","Principal":"user:alice","NotAction":["keystack:Encrypt","keystack:Decrypt","keystack:GenerateDataKey"],"Resource":"*"},
	 {"Sid":"T1Only","Effect":"Allow","Principal":"user:alice","Action":["keystack:Encrypt","keystack:Decrypt","keystack:GenerateDataKey"],"Resource":"key/k",
	  "Condition":{"StringEquals":{"keystack:EncryptionContext/tenant":"t1"}}}]}`
	if err := os.WriteFile(filepath.Join(dir, policyFile), []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openAs(t, dir, alice)
	enc, err := s.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := s.DecryptKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := encryptMsg(ctx, enc, testEC); err != nil {
		t.Errorf("encrypt t1: %v", err)
	}
	if _, err := encryptMsg(ctx, enc, other); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("encrypt t2 with the same keyring: %v, want ErrAccessDenied", err)
	}
	if pt, _, err := envelope.DecryptBytes(ctx, msgT1, dec, envelope.DecryptOptions{}); err != nil || string(pt) != "hello" {
		t.Errorf("decrypt t1: %q %v", pt, err)
	}
	if _, _, err := envelope.DecryptBytes(ctx, msgT2, dec, envelope.DecryptOptions{}); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("decrypt t2 with the same keyring: %v, want ErrAccessDenied", err)
	}
}

// TestAuthzDecryptChecksEDKVersion: decrypt is decided for the version the
// EDK names, before anything is unwrapped.
func TestAuthzDecryptChecksEDKVersion(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	msgV2 := sealedMsg(t, dir, testEC)
	s := openAs(t, dir, alice)
	if _, err := s.RotateKey(ctx, "k", "v3"); err != nil {
		t.Fatal(err)
	}
	msgV3 := sealedMsg(t, dir, testEC)
	pol := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"user:alice","Action":"keystack:*","Resource":"*"},
	 {"Effect":"Deny","Principal":"user:alice","Action":"keystack:Decrypt","Resource":"key/k/v2"}]}`
	if err := os.WriteFile(filepath.Join(dir, policyFile), []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openAs(t, dir, alice)
	dec, err := s.DecryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := envelope.DecryptBytes(ctx, msgV3, dec, envelope.DecryptOptions{}); err != nil {
		t.Errorf("decrypt v3: %v", err)
	}
	if _, _, err := envelope.DecryptBytes(ctx, msgV2, dec, envelope.DecryptOptions{}); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("decrypt v2: %v, want ErrAccessDenied", err)
	}
}

// TestAuthzAuditRecords: every decision is one record, and the closed log
// verifies with the store's key.
func TestAuthzAuditRecords(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, allowAllBut(policy.ActionRotateKey))
	s, err := Open(dir, OpenOptions{Principal: alice})
	if err != nil {
		t.Fatal(err)
	}
	before := countRecords(t, dir, audit.Filter{})
	if _, err := s.ListKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DescribeKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, "k", ""); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("rotate: %v", err)
	}
	enc, err := s.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // GenerateDataKey + Encrypt per message
		if _, err := encryptMsg(ctx, enc, testEC); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := countRecords(t, dir, audit.Filter{}) - before; got != 3+6 {
		t.Errorf("%d new records, want 9 (one per decision)", got)
	}
	denied := 0
	for e := range queryAll(t, dir, audit.Filter{}) {
		if e.Decision == "Deny" {
			if e.Action != policy.ActionRotateKey || e.Principal != alice || e.Resource != "key/k" || e.Reason == "" {
				t.Errorf("denial record %+v", e)
			}
			denied++
		}
	}
	if denied != 1 {
		t.Errorf("%d denial records, want 1", denied)
	}
	f, err := (&Store{dir: dir, st: newDirStorage(dir)}).load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	if _, err := audit.Verify(bytes.NewReader(data), audit.Key{MAC: f.AuditKey}); err != nil {
		t.Fatalf("closed log does not verify: %v", err)
	}
	if _, err := s.ListKeys(ctx); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("ListKeys after Close: %v, want refusal (nothing to record into)", err)
	}
}

// TestAuthzVerifyAudit: VerifyAudit passes on an open store's log without
// writing a checkpoint over it, and names the line after a byte is changed.
func TestAuthzVerifyAudit(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	s := openAs(t, dir, alice)
	if _, err := s.ListKeys(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Gate().VerifyAudit(ctx)
	if err != nil || rep.Records == 0 || rep.Sealed {
		t.Fatalf("VerifyAudit: %+v %v (an open log is not sealed: verify must not seal it)", rep, err)
	}
	if _, err := s.ListKeys(ctx); err != nil {
		t.Fatalf("store unusable after VerifyAudit: %v", err)
	}
	path := filepath.Join(dir, gate.AuditFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"resource":"key/k"`))
	if i < 0 {
		t.Fatal("no record for key k")
	}
	data[i+len(`"resource":"key/`)] = 'z'
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var te *audit.TamperError
	if _, err := s.Gate().VerifyAudit(ctx); !errors.As(err, &te) || te.Line < 1 {
		t.Fatalf("tampered log: %v, want a TamperError naming the line", err)
	}
}

// TestAuthzFailClosed: when the audit log cannot be written, the store
// refuses to open, and an open store refuses operations; a deleted log
// leaves the store refusing every operation until the anchor is reset.
func TestAuthzFailClosed(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, "")
	s := openAs(t, dir, alice)
	_ = s.enf.Close() // the log is gone from under the store
	if _, err := s.ListKeys(ctx); !errors.Is(err, policy.ErrAccessDenied) || !errors.Is(err, policy.ErrAuditFailed) {
		t.Fatalf("ListKeys with a closed log: %v, want ErrAccessDenied (audit failed)", err)
	}
	enc, err := Open(dir, OpenOptions{Principal: alice})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := enc.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	_ = enc.Close()
	if _, err := encryptMsg(ctx, kr, testEC); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("keyring of a closed store: %v, want ErrAccessDenied", err)
	}

	path := filepath.Join(dir, gate.AuditFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, OpenOptions{Principal: alice}); !errors.Is(err, audit.ErrWrite) {
		t.Fatalf("Open with audit.log a directory: %v, want audit.ErrWrite", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	gone := openAs(t, dir, alice)
	if _, err := gone.ListKeys(ctx); !errors.Is(err, gate.ErrAuditDamaged) || !errors.Is(err, audit.ErrTruncated) || !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("ListKeys with the log deleted: %v, want gate.ErrAuditDamaged/ErrTruncated", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a store with a deleted log created a new one: %v", err)
	}
}

// TestAuthzPutPolicy: the policy round-trips through policy.json, and a
// writer cannot grant more than it holds.
func TestAuthzPutPolicy(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"user:alice","Action":["keystack:*Policy","keystack:Encrypt"],"Resource":"*"}]}`)
	s := openAs(t, dir, alice)
	grow, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"user:alice","Action":["keystack:*Policy","keystack:Encrypt","keystack:Decrypt"],"Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Gate().PutPolicy(ctx, grow, policy.PutOptions{}); !errors.Is(err, policy.ErrAccessDenied) || !errors.Is(err, policy.ErrEscalation) {
		t.Fatalf("escalating PutPolicy: %v, want ErrAccessDenied/ErrEscalation", err)
	}
	shrink, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":[
	 {"Sid":"Shrunk","Effect":"Allow","Principal":"user:alice","Action":["keystack:GetPolicy","keystack:Encrypt"],"Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Gate().PutPolicy(ctx, shrink, policy.PutOptions{BypassLockoutSafetyCheck: true}); err != nil {
		t.Fatal(err)
	}
	got, err := openAs(t, dir, alice).Gate().GetPolicy(ctx)
	if err != nil || len(got.Statement) != 1 || got.Statement[0].Sid != "Shrunk" {
		t.Fatalf("GetPolicy after put: %+v %v", got, err)
	}
	if err := s.Gate().PutPolicy(ctx, shrink, policy.PutOptions{BypassLockoutSafetyCheck: true}); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("PutPolicy without PutPolicy any more: %v", err)
	}
	lit := &policy.Policy{Version: policy.Version, Statement: []policy.Statement{{Effect: "Maybe"}}}
	if err := openAs(t, newAuthzStore(t, ""), alice).Gate().PutPolicy(ctx, lit, policy.PutOptions{}); !errors.Is(err, policy.ErrInvalidPolicy) {
		t.Fatalf("invalid literal: %v", err)
	}
}

// TestAuthzPrincipalsSection: groups from keystore.json reach the policy.
func TestAuthzPrincipalsSection(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"group:ops","Action":"keystack:ListKeys","Resource":"*"}]}`)
	bob := openAs(t, dir, "user:bob")
	if _, err := bob.ListKeys(ctx); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("bob outside ops: %v", err)
	}
	s := &Store{dir: dir, st: newDirStorage(dir), now: time.Now}
	if err := s.update(ctx, func(f *storeFile) error {
		f.Principals = map[string]gatewire.PrincipalConfig{"user:bob": {Groups: []string{"ops"}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := openAs(t, dir, "user:bob").ListKeys(ctx); err != nil {
		t.Fatalf("bob in ops: %v", err)
	}
	d, err := openAs(t, dir, alice).Gate().SimulatePolicy(ctx, policy.Request{Principal: "user:bob", Action: policy.ActionListKeys, Resource: "key/*"})
	if !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("simulate without GetPolicy: %+v %v", d, err)
	}
}

// TestAuthzInitOwner: Init records the owner, the OS user by default, and
// a store trusting $KEYSTACK_PRINCIPAL says so.
func TestAuthzInitOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := Init(dir, InitOptions{Insecure: true, TrustPrincipalEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Owner string `json:"owner"`
		Key   []byte `json:"audit_key"`
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Owner != gatewire.OSPrincipal() || len(f.Key) != audit.MinMACKeySize {
		t.Fatalf("keystore.json owner %q, audit key %d bytes: %v", f.Owner, len(f.Key), err)
	}
	if s.Principal() != gatewire.OSPrincipal() {
		t.Errorf("Init's store acts as %q", s.Principal())
	}
	t.Setenv(PrincipalEnv, "user:ci")
	if p := principalFromEnv(t, dir); p != "user:ci" {
		t.Errorf("OpenOptions.PrincipalFromEnv: %q", p)
	}
	other := newAuthzStore(t, "")
	if p := principalFromEnv(t, other); p != gatewire.OSPrincipal() {
		t.Errorf("untrusting store: %q, want the OS user", p)
	}
}

func queryAll(t *testing.T, dir string, f audit.Filter) func(func(audit.Entry) bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	return func(yield func(audit.Entry) bool) {
		for e, err := range audit.Query(io.Reader(bytes.NewReader(data)), f) {
			if err != nil {
				t.Fatal(err)
			}
			if !yield(e) {
				return
			}
		}
	}
}

func countRecords(t *testing.T, dir string, f audit.Filter) int {
	n := 0
	for range queryAll(t, dir, f) {
		n++
	}
	return n
}

// principalFromEnv is the principal a store in dir opened with
// OpenOptions.PrincipalFromEnv acts as.
func principalFromEnv(t *testing.T, dir string) string {
	t.Helper()
	s, err := Open(dir, OpenOptions{PrincipalFromEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.Principal()
}
