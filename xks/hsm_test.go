package xks_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/internal/testca"
	"github.com/keystack/keystack/xks"
)

// TestSoftHSMKey serves a PKCS#11 AES-256 key on SoftHSM2: metadata,
// 4,300 bytes with 8,192 bytes of AAD, tampering, and a health check that
// round-trips through the token.
func TestSoftHSMKey(t *testing.T) {
	s := newStore(t)
	addHSMKey(t, s, "hsmkey")
	addHSMKey(t, s, "hsmhealth")
	cfg := testConfig("hsmkey")
	cfg.HealthKey = "hsmhealth"
	base := newProxy(t, s, cfg)
	st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/hsmkey/metadata", cred1, map[string]any{"requestMetadata": meta(alice, "CreateKey")})
	if st != 200 || out["keySpec"] != "AES_256" || out["keyStatus"] != "ENABLED" {
		t.Fatalf("metadata: %d %v", st, out)
	}
	aad := random(8192)
	enc := roundTrip(t, base, "hsmkey", random(4300), aad)
	body := decryptBody(enc, aad)
	body["additionalAuthenticatedData"] = random(8192)
	if st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/hsmkey/decrypt", cred1, body); st != 400 || out["errorName"] != "InvalidCiphertextException" {
		t.Fatalf("wrong AAD on the token: %d %v", st, out)
	}
	st, out = call(t, nil, base+"/tenant1/kms/xks/v1/health", cred1, map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}})
	if st != 200 || out["ekmFleetDetails"].([]any)[0].(map[string]any)["healthStatus"] != "ACTIVE" {
		t.Fatalf("health on SoftHSM2: %d %v", st, out)
	}
}

// TestHealthUnavailable: a health key that cannot seal reports UNAVAILABLE.
func TestHealthUnavailable(t *testing.T) {
	s := newStore(t)
	if err := serverstore.Of(s).SetKeyEnabled(context.Background(), "health", false); err != nil {
		t.Fatal(err)
	}
	base := newProxy(t, s, testConfig("k1"))
	_, out := call(t, nil, base+"/tenant1/kms/xks/v1/health", cred1, map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}})
	if out["ekmFleetDetails"].([]any)[0].(map[string]any)["healthStatus"] != "UNAVAILABLE" {
		t.Fatalf("health with a disabled health key: %v", out)
	}
}

// issue returns a client certificate for cn that ca signs, valid until
// notAfter (zero: an hour from now).
func issue(t *testing.T, ca *testca.CA, cn string, notAfter time.Time) tls.Certificate {
	return ca.IssueTLS(t, testca.Leaf{CN: cn, NotAfter: notAfter})
}

// TestMutualTLS: a prefix with mTLS accepts KMS's certificate (right CA,
// CN cks.kms.eu-west-1.amazonaws.com), also for the next request on the
// connection, until a reload moves the prefix to another CA; the handshake (configured as
// server.ListenConfig.ClientCerts configures it) refuses another CN,
// another CA and an expired certificate; a client without one gets 401,
// even with valid SigV4.
func TestMutualTLS(t *testing.T) {
	ca, other := testca.New(t, "test CA"), testca.New(t, "test CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("k1")
	cfg.Prefixes[0].MTLS = &xks.MTLS{CAFile: caFile, SubjectCN: "cks.kms.eu-west-1.amazonaws.com"}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	h := xks.New(cfg, newStore(t))
	if !h.WantsClientCert() {
		t.Fatal("WantsClientCert is false with an mTLS prefix")
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, VerifyConnection: func(cs tls.ConnectionState) error {
		return h.VerifyClientCert(cs.PeerCertificates)
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := func(certs ...tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = certs
		return &http.Client{Transport: tr}
	}
	body := map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}}
	url := srv.URL + "/tenant1/kms/xks/v1/health"
	kms := client(issue(t, ca, "cks.kms.eu-west-1.amazonaws.com", time.Time{}))
	for i := range 2 { // the second request on the connection: the accepted chain is remembered
		if st, out := call(t, kms, url, cred1, body); st != 200 {
			t.Fatalf("KMS's certificate, request %d: %d %v", i+1, st, out)
		}
	}
	// A reload to another CA refuses the next request on the same open
	// connection.
	otherFile := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(otherFile, other.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	moved := testConfig("k1")
	moved.Prefixes[0].MTLS = &xks.MTLS{CAFile: otherFile, SubjectCN: "cks.kms.eu-west-1.amazonaws.com"}
	if err := moved.Check(); err != nil {
		t.Fatal(err)
	}
	h.SetConfig(moved)
	if st, out := call(t, kms, url, cred1, body); st != 401 || out["errorName"] != "AuthenticationFailedException" {
		t.Fatalf("after a reload to another CA, on the open connection: %d %v", st, out)
	}
	h.SetConfig(cfg)
	if st, out := call(t, client(), url, cred1, body); st != 401 || out["errorName"] != "AuthenticationFailedException" {
		t.Errorf("no certificate: %d %v", st, out)
	}
	for name, cert := range map[string]tls.Certificate{
		"other CN": issue(t, ca, "evil.example", time.Time{}), "other CA": issue(t, other, "cks.kms.eu-west-1.amazonaws.com", time.Time{}),
		"expired": issue(t, ca, "cks.kms.eu-west-1.amazonaws.com", time.Now().Add(-time.Minute)),
	} {
		raw, _ := json.Marshal(body)
		resp, err := client(cert).Post(url, "application/json", bytes.NewReader(raw))
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: HTTP %d, want the handshake refused", name, resp.StatusCode)
		} else if !strings.Contains(err.Error(), "bad certificate") {
			t.Errorf("%s: %v, want a bad certificate alert", name, err)
		}
	}
}

// TestTokenKeyDestroyed: a served key whose object is destroyed on the
// token after the proxy started is KeyNotFoundException (404) for every
// key API, while the health check (its own key intact) stays ACTIVE; a
// destroyed health key makes the health check UNAVAILABLE once its
// cached result has aged out.
func TestTokenKeyDestroyed(t *testing.T) {
	s := newStore(t)
	doomed, doomedHealth := addHSMKey(t, s, "doomed"), addHSMKey(t, s, "doomedhealth")
	cfg := testConfig("doomed")
	cfg.HealthKey = "doomedhealth"
	base, advance := clockedServer(t, cfg, s)
	enc := roundTrip(t, base, "doomed", []byte("before the key was destroyed"), nil)
	health := func() string {
		t.Helper()
		st, out := call(t, nil, base+"/tenant1/kms/xks/v1/health", cred1, map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}})
		if st != 200 {
			t.Fatalf("health: %d %v", st, out)
		}
		return out["ekmFleetDetails"].([]any)[0].(map[string]any)["healthStatus"].(string)
	}
	if got := health(); got != "ACTIVE" {
		t.Fatalf("health before: %s", got)
	}
	destroyTokenKey(t, doomed)
	url := base + "/tenant1/kms/xks/v1/keys/doomed/"
	for op, body := range map[string]map[string]any{
		"metadata": {"requestMetadata": meta(alice, "DescribeKey")},
		"encrypt":  {"requestMetadata": meta(alice, "Encrypt"), "plaintext": random(32), "encryptionAlgorithm": "AES_GCM"},
		"decrypt":  decryptBody(enc, nil),
	} {
		if st, out := call(t, nil, url+op, cred1, body); st != http.StatusNotFound || out["errorName"] != "KeyNotFoundException" {
			t.Errorf("%s after the token object was destroyed: %d %v", op, st, out)
		}
	}
	advance(31 * time.Second)
	if got := health(); got != "ACTIVE" {
		t.Fatalf("health with its own key intact: %s", got)
	}
	destroyTokenKey(t, doomedHealth)
	if got := health(); got != "ACTIVE" {
		t.Fatalf("health within 30 s of its last check: %s, want the cached ACTIVE", got)
	}
	advance(31 * time.Second)
	if got := health(); got != "UNAVAILABLE" {
		t.Fatalf("health with its key destroyed: %s", got)
	}
}

// destroyTokenKey destroys the AES key labeled label on token X through a
// PKCS#11 session of its own, as an HSM administrator would.
func destroyTokenKey(t *testing.T, label string) {
	t.Helper()
	be := hsm.NewBackend(hsm.Options{Prompt: func(context.Context, string) (string, error) { return "1234", nil }})
	defer be.Close()
	if err := be.DestroyVersion(context.Background(), "pkcs11:token=X;object="+label+";type=secret-key?module-path="+softhsmModule); err != nil {
		t.Fatal(err)
	}
}
