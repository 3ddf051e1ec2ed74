package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/client"
	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/testhook"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

const owner = "user:alice"

// front is a real key server behind a handler that counts requests by
// operation and can fail chosen operations: "drop" closes the connection
// after reading the request (it reached the server, no answer), "500"
// answers KMSInternalException without acting.
type front struct {
	srv  http.Handler
	mu   sync.Mutex
	seen map[string]int
	fail map[string]string
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	f.mu.Lock()
	f.seen[op]++
	mode := f.fail[op]
	f.mu.Unlock()
	switch mode {
	case "drop":
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case "hang":
		select {
		case <-r.Context().Done():
		case <-time.After(1500 * time.Millisecond):
		}
		return
	case "throttle": // as the server's rate limit answers, before acting
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
		return
	case "500":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"__type":"KMSInternalException","message":"injected"}`))
		return
	}
	f.srv.ServeHTTP(w, r)
}

func (f *front) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[op]
}

// fixture serves one keystore (one key, "payments") through two fronts.
type fixture struct {
	a, b       *front
	urlA, urlB string
	cred       *keystore.Credential
}

func newFixture(t *testing.T) *fixture {
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := keystore.Init(dir, keystore.InitOptions{Passphrase: []byte("pw"), KDF: "scrypt", Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = keystore.Open(dir, keystore.OpenOptions{Principal: owner, Passphrase: func() ([]byte, error) { return []byte("pw"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if _, err := s.CreateKey(ctx, "payments", keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	cred, err := s.CreateCredential(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: s, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{cred: cred}
	f.a = &front{srv: srv, seen: map[string]int{}, fail: map[string]string{}}
	f.b = &front{srv: srv, seen: map[string]int{}, fail: map[string]string{}}
	ha, hb := httptest.NewServer(f.a), httptest.NewServer(f.b)
	t.Cleanup(ha.Close)
	t.Cleanup(hb.Close)
	f.urlA, f.urlB = ha.URL, hb.URL
	return f
}

func (f *fixture) client(t *testing.T, urls ...string) *client.Client {
	c, err := client.New(client.Config{Endpoints: urls, AccessKeyID: f.cred.AccessKeyID, SecretAccessKey: f.cred.Secret,
		Timeout: 10 * time.Second, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip encrypts with c and decrypts with d.
func roundTrip(t *testing.T, c, d *client.Client) {
	t.Helper()
	ctx := context.Background()
	enc, err := c.EncryptKeyring(ctx, []string{"payments"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := envelope.EncryptBytes(ctx, []byte("hello"), enc, envelope.EncryptOptions{Context: map[string]string{"t": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := d.DecryptKeyring(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, _, err := envelope.DecryptBytes(ctx, msg, dec, envelope.DecryptOptions{Context: map[string]string{"t": "a"}})
	if err != nil || string(pt) != "hello" {
		t.Fatalf("decrypt: %q, %v", pt, err)
	}
}

// An idempotent request whose first server broke the connection or
// answered 5xx is answered by the second, signed for the second's host.
func TestFailoverIdempotent(t *testing.T) {
	for _, mode := range []string{"drop", "500"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			f.a.fail["GenerateDataKey"], f.a.fail["Decrypt"] = mode, mode
			// Two clients: each starts with a (the second client's
			// Decrypt would otherwise go to b, which answered last).
			roundTrip(t, f.client(t, f.urlA, f.urlB), f.client(t, f.urlA, f.urlB))
			for _, op := range []string{"GenerateDataKey", "Decrypt"} {
				if f.a.count(op) != 1 || f.b.count(op) != 1 {
					t.Errorf("%s: %d attempts on a, %d on b; want 1 and 1", op, f.a.count(op), f.b.count(op))
				}
			}
		})
	}
}

// A non-idempotent request that reached a server without an answer is
// never sent again: the error says it may have been applied.
func TestNoRetryNonIdempotent(t *testing.T) {
	f := newFixture(t)
	f.a.fail["CreateKey"] = "drop"
	c := f.client(t, f.urlA, f.urlB)
	_, err := c.CreateKey(context.Background(), "", "once")
	var ue *client.UnavailableError
	if !errors.As(err, &ue) || !ue.MaybeApplied || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("CreateKey: %v, want an UnavailableError that may have been applied", err)
	}
	if !strings.Contains(err.Error(), "may or may not have been applied") {
		t.Errorf("error %q does not say it may have been applied", err)
	}
	if n := f.a.count("CreateKey") + f.b.count("CreateKey"); n != 1 {
		t.Errorf("CreateKey sent %d times, want 1", n)
	}
	// A 5xx answer to it is returned as the server's error, not retried.
	f.a.fail["CreateKey"] = "500"
	if _, err := c.CreateKey(context.Background(), "", "once"); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("CreateKey after 500: %v", err)
	}
	if n := f.b.count("CreateKey"); n != 0 {
		t.Errorf("CreateKey reached the second server %d times", n)
	}
}

// A request that never reached a server (nothing listens) moves on for
// every operation, non-idempotent ones included, and the endpoint that
// answered is tried first next time.
func TestFailoverBeforeSending(t *testing.T) {
	f := newFixture(t)
	dead := deadURL(t)
	c := f.client(t, dead, f.urlB)
	if _, err := c.CreateKey(context.Background(), "k1", ""); err != nil {
		t.Fatal(err)
	}
	if f.b.count("CreateKey") != 1 || f.b.count("CreateAlias") != 1 {
		t.Errorf("b saw CreateKey %d, CreateAlias %d times", f.b.count("CreateKey"), f.b.count("CreateAlias"))
	}
	roundTrip(t, c, c)
	if n := f.b.count("Decrypt"); n != 1 {
		t.Errorf("b, which answered last, saw %d Decrypt calls, want 1", n)
	}
}

// When no endpoint answers, the error names each endpoint's failure once
// and matches ErrUnavailable, on the admin and the data-key paths.
func TestAllDown(t *testing.T) {
	d1, d2 := deadURL(t), deadURL(t)
	c, err := client.New(client.Config{Endpoints: []string{d1 + "," + d2}, AccessKeyID: "KSAAAAAAAAAAAAAAAAAA", SecretAccessKey: "s3cr3t-never-printed",
		Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPolicy(context.Background())
	if !errors.Is(err, client.ErrUnavailable) || strings.Count(err.Error(), d1) != 1 || strings.Count(err.Error(), d2) != 1 {
		t.Errorf("GetPolicy: %v", err)
	}
	enc, err := c.EncryptKeyring(context.Background(), []string{"arn:aws:kms:us-east-1:111122223333:key/payments"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = envelope.EncryptBytes(context.Background(), nil, enc, envelope.EncryptOptions{})
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), d2) {
		t.Errorf("encrypt: %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the secret is in %q", err)
	}
}

// With a cache, a run of messages costs one GenerateDataKey.
func TestCacheSavesCalls(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.urlA)
	ctx := context.Background()
	enc, err := c.EncryptKeyring(ctx, []string{"payments"}, &keyring.CacheOptions{MaxAge: time.Minute, MaxMessages: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := envelope.EncryptBytes(ctx, []byte("x"), enc, envelope.EncryptOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.a.count("GenerateDataKey"); n != 2 {
		t.Errorf("5 messages, at most 3 per data key: %d GenerateDataKey calls, want 2", n)
	}
}

// Wrong credentials are an authentication error naming the server's
// answer, never the secret.
func TestWrongSecret(t *testing.T) {
	f := newFixture(t)
	f.cred.Secret = "wrong-secret-value-0123456789abcdefghijkl"
	c := f.client(t, f.urlA)
	_, err := c.ListKeys(context.Background())
	if !errors.Is(err, client.ErrAuthentication) || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Fatalf("ListKeys: %v", err)
	}
	if strings.Contains(err.Error(), f.cred.Secret) {
		t.Errorf("the secret is in %q", err)
	}
}

func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestEndpoints(t *testing.T) {
	good := []string{"unix:///run/ks.sock", "https://keys.internal:8443", "http://127.0.0.1:8080", "http://[::1]:1", "http://localhost:9"}
	for _, s := range good {
		if err := client.CheckEndpoint(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := []string{"", "unix://relative", "unix:run.sock", "http://192.0.2.1:80", "http://keys.internal:80", "ftp://x",
		"https://user:pw@host:1", "https://host:1/path", "https://host:1?q=1", "keys.internal:8443"}
	for _, s := range bad {
		if err := client.CheckEndpoint(s); !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("%q: %v, want ErrInvalidConfig", s, err)
		}
	}
	// No error repeats what a user part, query or fragment held.
	for _, s := range []string{"https://id:SECRET@host:1", "https://SECRET@host:1", "https://id:SECRET@[::1",
		"ftp://id:SECRET@x", "https://host:1/?sig=SECRET", "https://host:1#SECRET", "unix://id:SECRET@x/s", "x:id:SECRET@y"} {
		if err := client.CheckEndpoint(s); err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%q: %v", s, err)
		}
	}
	eps, err := client.EndpointUnixPaths([]string{"unix:///a, unix:///b", "https://c:1"})
	if err != nil || len(eps) != 3 || eps[1] != "/b" {
		t.Errorf("Config.Endpoints parsed as: %v, %v", eps, err)
	}
	if _, err := client.New(client.Config{Endpoints: []string{" , "}}); !errors.Is(err, client.ErrInvalidConfig) {
		t.Errorf("no endpoint: %v", err)
	}
}

func TestIdempotent(t *testing.T) {
	for target, want := range map[string]bool{
		"TrentService.Decrypt": true, "TrentService.GenerateDataKey": true, "KeystackAdmin.GetPolicy": true,
		"TrentService.CreateKey": false, "TrentService.RotateKeyOnDemand": false, "TrentService.CreateAlias": false,
		"KeystackAdmin.CreateCredentials": false, "KeystackAdmin.RevokeCredentials": false,
		"TrentService.ScheduleKeyDeletion": false, "TrentService.NoSuch": false,
	} {
		if client.Idempotent(target) != want {
			t.Errorf("Idempotent(%s) = %v", target, !want)
		}
	}
}

func TestMain(m *testing.M) {
	testhook.CheapKDF = true // no test here is about the KDF's cost
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

// ShowAudit returns the most recent matching records, oldest first, and
// says when older ones were left out.
func TestShowAudit(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.urlA)
	ctx := context.Background()
	for _, name := range []string{"k1", "k2", "k3"} {
		if _, err := c.CreateKey(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	all, truncated, err := c.ShowAudit(ctx, client.AuditQuery{Action: "keystack:CreateKey"})
	if err != nil || truncated || len(all) != 4 { // and the fixture's "payments"
		t.Fatalf("ShowAudit: %d records, truncated %v, %v", len(all), truncated, err)
	}
	last, truncated, err := c.ShowAudit(ctx, client.AuditQuery{Action: "keystack:CreateKey", Limit: 2})
	if err != nil || !truncated || len(last) != 2 || last[0].Seq != all[2].Seq || last[1].Seq != all[3].Seq {
		t.Fatalf("ShowAudit Limit 2: %+v, truncated %v, %v", last, truncated, err)
	}
	if _, _, err := c.ShowAudit(ctx, client.AuditQuery{Limit: 5001}); !strings.Contains(fmtErr(err), "ValidationException") {
		t.Errorf("Limit 5001: %v", err)
	}
	none, _, err := c.ShowAudit(ctx, client.AuditQuery{Since: time.Now().Add(time.Hour)})
	if err != nil || len(none) != 0 {
		t.Errorf("Since in the future: %d records, %v", len(none), err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// An endpoint that accepts a request and never answers costs an
// idempotent call one AttemptTimeout, then the next endpoint answers; a
// non-idempotent call fails after it, saying it may have been applied.
func TestHangingEndpoint(t *testing.T) {
	t.Parallel() // waits out deadlines; overlaps the other waits
	f := newFixture(t)
	f.a.fail["GenerateDataKey"], f.a.fail["CreateKey"] = "hang", "hang"
	c, err := client.New(client.Config{Endpoints: []string{f.urlA, f.urlB}, AccessKeyID: f.cred.AccessKeyID, SecretAccessKey: f.cred.Secret,
		AttemptTimeout: 300 * time.Millisecond, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	enc, err := c.EncryptKeyring(ctx, []string{"payments"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := envelope.EncryptBytes(ctx, []byte("x"), enc, envelope.EncryptOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second || f.b.count("GenerateDataKey") != 1 {
		t.Errorf("GenerateDataKey took %v, b saw it %d times", d, f.b.count("GenerateDataKey"))
	}
	c2, _ := client.New(client.Config{Endpoints: []string{f.urlA, f.urlB}, AccessKeyID: f.cred.AccessKeyID, SecretAccessKey: f.cred.Secret,
		AttemptTimeout: 300 * time.Millisecond, Backoff: time.Millisecond})
	defer c2.Close()
	_, err = c2.CreateKey(ctx, "", "")
	var ue *client.UnavailableError
	if !errors.As(err, &ue) || !ue.MaybeApplied || f.b.count("CreateKey") != 0 {
		t.Errorf("CreateKey on a hanging server: %v (b saw %d)", err, f.b.count("CreateKey"))
	}
}

// TestHostileErrorAnswer: an error answer's code and message reach the
// terminal, so control characters (escape sequences) are replaced and the
// message is bounded, whatever the server sends.
func TestHostileErrorAnswer(t *testing.T) {
	long := strings.Repeat("A", 1<<20)
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"Bad\u001b]0;x\u0007Code","message":"\u001b[2J\u001b[31mpwned\r\n%s"}`, long)
	}))
	t.Cleanup(h.Close)
	c, err := client.New(client.Config{Endpoints: []string{h.URL}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.ListKeys(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\x1b\x07\r\n") || len(msg) > 4096 || !strings.Contains(msg, "pwned") {
		t.Errorf("error of %d bytes: %.200q", len(msg), msg)
	}
}

// TestOversizedAnswer: an answer past the client's bound is refused as
// such, not parsed cut short.
func TestOversizedAnswer(t *testing.T) {
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"Policy":"%s"}`, strings.Repeat("A", 9<<20))
	}))
	t.Cleanup(h.Close)
	c, err := client.New(client.Config{Endpoints: []string{h.URL}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.GetPolicy(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("GetPolicy: %v", err)
	}
}

// TestUntrustedCertificate: an https endpoint whose certificate does not
// verify fails as ErrTLSTrust (with the verification error inside), not
// as an outage, after the other endpoint did not answer either.
func TestUntrustedCertificate(t *testing.T) {
	h := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("a request reached the server over an unverified connection")
	}))
	h.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	h.StartTLS()
	t.Cleanup(h.Close)
	c, err := client.New(client.Config{Endpoints: []string{h.URL, deadURL(t)}, Timeout: 5 * time.Second, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.GetPolicy(context.Background())
	var cv *tls.CertificateVerificationError
	if !errors.Is(err, client.ErrTLSTrust) || errors.Is(err, client.ErrUnavailable) || !errors.As(err, &cv) {
		t.Fatalf("GetPolicy from an untrusted server: %v, want ErrTLSTrust (not ErrUnavailable) holding the verification error", err)
	}
}
