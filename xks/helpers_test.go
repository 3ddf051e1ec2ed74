package xks_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/internal/pkcs11token"
	"github.com/keystack/keystack/internal/testhook"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/xks"
)

const owner = "user:alice"

// testPolicy: alice owns everything; the XKS principal may use keys for
// principals of account 123456789012, never for Mallory.
const testPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"Owner","Effect":"Allow","Principal":"user:alice","Action":"keystack:*","Resource":"*"},
 {"Sid":"XKS","Effect":"Allow","Principal":"service:xks",
  "Action":["keystack:Encrypt","keystack:Decrypt","keystack:DescribeKey"],"Resource":"key/*",
  "Condition":{"StringLike":{"keystack:xks/awsPrincipalArn":"arn:aws:iam::123456789012:*"}}},
 {"Sid":"NoMallory","Effect":"Deny","Principal":"*","Action":"*","Resource":"*",
  "Condition":{"StringEquals":{"keystack:xks/awsPrincipalArn":"arn:aws:iam::123456789012:user/Mallory"}}}]}`

// Credentials in the formats Appendix A requires; two for rotation.
var (
	cred1 = xks.Credential{AccessKeyID: "AKIAXKSTESTONE2345672", SecretAccessKey: "c2VjcmV0LW9uZS0zMi1ieXRlcy1vZi1lbnRyb3B5ISE="}
	cred2 = xks.Credential{AccessKeyID: "AKIAXKSTESTTWO2345672", SecretAccessKey: "c2VjcmV0LXR3by0zMi1ieXRlcy1vZi1lbnRyb3B5ISE="}
)

var (
	softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"
	softhsmErr    string // why SoftHSM2 is unusable, or ""
)

func TestMain(m *testing.M) {
	testhook.CheapKDF = true // no test here is about the KDF's cost
	dir, err := os.MkdirTemp("", "keystack-xks-test-")
	if err != nil {
		panic(err)
	}
	softhsmErr = setupSoftHSM(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setupSoftHSM makes a fresh SoftHSM2 token "X" (PIN 1234) under dir.
func setupSoftHSM(dir string) string {
	if _, err := os.Stat(softhsmModule); err != nil {
		return "SoftHSM2 module not found (make test-prereqs)"
	}
	tokens := filepath.Join(dir, "tokens")
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return err.Error()
	}
	cfg := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tokens)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return err.Error()
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "X", "--so-pin", "12345678", "--pin", "1234").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("softhsm2-util: %v: %s", err, out)
	}
	return ""
}

func requireSoftHSM(tb testing.TB) {
	tb.Helper()
	if softhsmErr == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("SoftHSM2 is required under CI=true: %s", softhsmErr)
	}
	tb.Skip(softhsmErr)
}

// newStore makes a keystore with testPolicy, the PKCS#11 backend
// registered, and local AES keys "k1" and "health".
func newStore(tb testing.TB) *keystore.Store {
	tb.Helper()
	return newStoreWrapped(tb, nil)
}

// newStoreWrapped is newStore with the PKCS#11 backend wrapped by wrap
// (nil: unwrapped).
func newStoreWrapped(tb testing.TB, wrap func(*hsm.Backend) keystore.Backend) *keystore.Store {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "ks")
	s, err := keystore.Init(dir, keystore.InitOptions{Passphrase: []byte("pw"), KDF: "scrypt", Owner: owner})
	if err != nil {
		tb.Fatal(err)
	}
	_ = s.Close()
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(testPolicy), 0o600); err != nil {
		tb.Fatal(err)
	}
	be := hsm.NewBackend(hsm.Options{Prompt: func(context.Context, string) (string, error) { return "1234", nil }})
	tb.Cleanup(func() { _ = be.Close() })
	var registered keystore.Backend = be
	if wrap != nil {
		registered = wrap(be)
	}
	s, err = keystore.Open(dir, keystore.OpenOptions{Principal: owner, Passphrase: func() ([]byte, error) { return []byte("pw"), nil },
		Backends: map[string]keystore.Backend{keystore.BackendPKCS11: registered}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	for _, k := range []string{"k1", "k2", "health"} {
		if _, err := s.CreateKey(context.Background(), k, keystore.CreateKeyOptions{}); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// labelSeq numbers the labels of the objects the tests create on token X.
// The token lives as long as the test binary (TestMain makes it), so with
// -count=N every test runs N times against it: a fixed label would find
// the object the previous run made and fail as a duplicate.
var labelSeq atomic.Int64

// tokenLabel returns a label for a new token object for key name, unique
// in this process.
func tokenLabel(name string) string { return name + "-" + strconv.FormatInt(labelSeq.Add(1), 10) }

// addHSMKey generates an AES-256 key on the SoftHSM2 token and registers
// it in s as key name; it returns the object's label (see tokenLabel).
func addHSMKey(tb testing.TB, s *keystore.Store, name string) (label string) {
	tb.Helper()
	label = tokenLabel(name)
	requireSoftHSM(tb)
	ctx := context.Background()
	u := &pkcs11token.URI{Token: "X", Module: softhsmModule}
	tok, err := pkcs11token.Open(ctx, u, pkcs11token.Options{Prompt: func(context.Context, string) (string, error) { return "1234", nil }})
	if err != nil {
		tb.Fatal(err)
	}
	defer tok.Close()
	if err := tok.GenerateAESKey(ctx, label, []byte(label)); err != nil {
		tb.Fatal(err)
	}
	ref := "pkcs11:token=X;object=" + label + ";type=secret-key?module-path=" + softhsmModule
	if _, err := s.CreateKey(ctx, name, keystore.CreateKeyOptions{Backend: keystore.BackendPKCS11, Ref: ref}); err != nil {
		tb.Fatal(err)
	}
	return label
}

// clockedServer checks cfg and serves it over s on a test server whose
// clock stands still until the test moves it on with advance.
func clockedServer(t *testing.T, cfg *xks.Config, s *keystore.Store) (url string, advance func(time.Duration)) {
	t.Helper()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	h := xks.New(cfg, s)
	now := time.Now()
	xks.SetClock(h, func() time.Time { return now })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, func(d time.Duration) { now = now.Add(d) }
}

func testConfig(keys ...string) *xks.Config {
	// The longest backend deadline: the tests share a loaded machine.
	return &xks.Config{HealthKey: "health", BackendTimeoutMs: 250, Prefixes: []xks.Prefix{
		{Path: "/tenant1", Credentials: []xks.Credential{cred1, cred2}, Keys: keys},
	}}
}

// newProxy serves cfg over s on a loopback HTTP server.
func newProxy(tb testing.TB, s *keystore.Store, cfg *xks.Config) string {
	tb.Helper()
	if err := cfg.Check(); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(xks.New(cfg, s))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// call signs body with cred (SigV4, service kms-xks-proxy, aws-sdk-go-v2's
// signer) and POSTs it to url; it returns the status and decoded body.
func call(tb testing.TB, client *http.Client, url string, cred xks.Credential, body any) (int, map[string]any) {
	tb.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(raw)
	creds := aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms-xks-proxy", "eu-west-1", time.Now()); err != nil {
		tb.Fatal(err)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" { // the specification: JSON both ways
		tb.Fatalf("HTTP %d with Content-Type %q, want application/json", resp.StatusCode, ct)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("decoding the %d response: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

func meta(principal, op string) map[string]any {
	return map[string]any{"awsPrincipalArn": principal, "kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"kmsOperation": op, "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae", "kmsViaService": "ebs"}
}

const alice = "arn:aws:iam::123456789012:user/Alice"
