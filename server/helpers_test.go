package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/keystack/keystack/internal/testhook"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

func TestMain(m *testing.M) {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	testhook.CheapKDF = true // no test here is about the KDF's cost
	os.Exit(m.Run())
}

const owner = "user:alice"

// testPolicy: alice owns everything; billing may use keys tagged
// team=billing with a tenant in its context, over SigV4, but never
// decrypt for tenant "locked"; ops may list and describe.
const testPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"Owner","Effect":"Allow","Principal":"user:alice","Action":"keystack:*","Resource":"*"},
 {"Sid":"Billing","Effect":"Allow","Principal":"service:billing",
  "Action":["keystack:Encrypt","keystack:Decrypt","keystack:GenerateDataKey","keystack:DescribeKey"],"Resource":"key/*",
  "Condition":{"StringEquals":{"keystack:ResourceTag/team":"billing","keystack:AuthMethod":"sigv4"}}},
 {"Sid":"NoLocked","Effect":"Deny","Principal":"*","Action":"keystack:Decrypt","Resource":"*",
  "Condition":{"StringEquals":{"keystack:EncryptionContext/tenant":"locked"}}},
 {"Sid":"Ops","Effect":"Allow","Principal":"service:ops","Action":["keystack:ListKeys","keystack:DescribeKey"],"Resource":"*"}]}`

// fixture is a keystore served on a loopback port, with credentials.
type fixture struct {
	dir   string
	store *keystore.Store
	url   string
	creds map[string]*keystore.Credential // by principal
	logs  *syncBuffer                     // the server's log
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, testPolicy)
}

// newFixtureWith is newFixture with another policy.
func newFixtureWith(t testing.TB, policyJSON string) *fixture {
	t.Helper()
	current = t
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := keystore.Init(dir, keystore.InitOptions{Passphrase: []byte("pw"), KDF: "scrypt", Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(policyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = keystore.Open(dir, keystore.OpenOptions{Principal: owner, Passphrase: func() ([]byte, error) { return []byte("pw"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, store: s, creds: map[string]*keystore.Credential{}, logs: &syncBuffer{}}
	for _, p := range []string{owner, "service:billing", "service:ops"} {
		c, err := s.CreateCredential(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		f.creds[p] = c
	}
	f.url = serveLog(t, s, server.ListenConfig{HTTPAddr: "127.0.0.1:0"}, f.logs)
	return f
}

// serve runs a server on lc until the test ends and returns its URL.
func serve(t testing.TB, s *keystore.Store, lc server.ListenConfig) string {
	t.Helper()
	return serveLog(t, s, lc, io.Discard)
}

func serveLog(t testing.TB, s *keystore.Store, lc server.ListenConfig, log io.Writer) string {
	t.Helper()
	srv, err := server.New(server.Config{Store: s, Region: "eu-west-1", Account: "444455556666",
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	url, _ := serveWith(t, srv, lc)
	return url
}

// serveWith runs srv on lc until the test ends; it returns the URL of the
// first listener and of the last (the metrics listener, when set).
func serveWith(t testing.TB, srv *server.Server, lc server.ListenConfig) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []string, 1)
	lc.Ready = func(a []string) { ready <- a }
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case a := <-ready:
		return "http://" + a[0], "http://" + a[len(a)-1]
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	return "", ""
}

// client is an unmodified aws-sdk-go-v2 KMS client for principal.
func (f *fixture) client(principal string) *kms.Client {
	c := f.creds[principal]
	return clientFor(f.url, c.AccessKeyID, c.Secret)
}

func clientFor(url, akid, secret string) *kms.Client {
	return kms.New(kms.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
		Retryer:     retry.AddWithMaxAttempts(retry.NewStandard(), 1),
	})
}

// apiCode returns the KMS error name of err, or "" when it has none.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Errorf("%s: got %v (code %q), want %s", what, err, got, code)
	}
}

// current is the running test, for must; the tests here do not run in
// parallel.
var current testing.TB

// must returns v, failing the current test on err.
func must[T any](v T, err error) T {
	if err != nil {
		current.Helper()
		current.Fatal(err)
	}
	return v
}
