package xks_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/xks"
)

func b64(tb testing.TB, v any) []byte {
	tb.Helper()
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || s == "" {
		tb.Fatalf("not a Base64 field: %v", v)
	}
	return b
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// roundTrip encrypts pt with aad on key, checks the response's shape and
// its CDIV computed here from the spec's formula, and decrypts it back.
func roundTrip(t *testing.T, base, key string, pt, aad []byte) map[string]any {
	t.Helper()
	st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/"+key+"/encrypt", cred1, map[string]any{
		"requestMetadata": meta(alice, "Encrypt"), "plaintext": pt, "additionalAuthenticatedData": aad,
		"encryptionAlgorithm": "AES_GCM", "ciphertextDataIntegrityValueAlgorithm": "SHA_256"})
	if st != http.StatusOK {
		t.Fatalf("encrypt: %d %v", st, out)
	}
	ct, iv, tag, md := b64(t, out["ciphertext"]), b64(t, out["initializationVector"]), b64(t, out["authenticationTag"]), b64(t, out["ciphertextMetadata"])
	// A plaintext shorter than 16 bytes may come out as itself by chance
	// (a 1-byte one once in 256 runs): only longer ones must differ.
	if len(ct) != len(pt) || len(iv) != 12 || len(tag) != 16 || len(md) > 20 || len(pt) >= 16 && bytes.Equal(ct, pt) {
		t.Fatalf("encrypt: ciphertext %d bytes for %d, IV %d, tag %d, metadata %d", len(ct), len(pt), len(iv), len(tag), len(md))
	}
	h := sha256.New()
	for _, p := range [][]byte{aad, md, iv, ct, tag} {
		h.Write(p)
	}
	if !bytes.Equal(b64(t, out["ciphertextDataIntegrityValue"]), h.Sum(nil)) {
		t.Fatal("ciphertextDataIntegrityValue is not SHA-256(aad || metadata || iv || ciphertext || tag)")
	}
	st, dec := call(t, nil, base+"/tenant1/kms/xks/v1/keys/"+key+"/decrypt", cred2, decryptBody(out, aad))
	if st != http.StatusOK || !bytes.Equal(b64(t, dec["plaintext"]), pt) {
		t.Fatalf("decrypt: %d %v", st, dec)
	}
	return out
}

func decryptBody(enc map[string]any, aad []byte) map[string]any {
	return map[string]any{"requestMetadata": meta(alice, "Decrypt"), "ciphertext": enc["ciphertext"],
		"ciphertextMetadata": enc["ciphertextMetadata"], "initializationVector": enc["initializationVector"],
		"authenticationTag": enc["authenticationTag"], "additionalAuthenticatedData": aad, "encryptionAlgorithm": "AES_GCM"}
}

func TestEncryptDecryptLargest(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	roundTrip(t, base, "k1", random(4300), random(8192))
	roundTrip(t, base, "k1", []byte("Hello World!"), nil)
}

func TestAADBindsLengths(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	enc := roundTrip(t, base, "k1", []byte("data key"), nil)
	md := b64(t, enc["ciphertextMetadata"])
	// The spec's example of a forgery: metadata passed as AAD, none as metadata.
	body := decryptBody(enc, md)
	delete(body, "ciphertextMetadata")
	if st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/k1/decrypt", cred1, body); st != 400 || out["errorName"] != "InvalidCiphertextException" {
		t.Fatalf("metadata moved into AAD: %d %v", st, out)
	}
}

func TestDecryptRefusesTampering(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1", "k2"))
	aad := []byte("project=nile")
	enc := roundTrip(t, base, "k1", []byte("secret"), aad)
	flip := func(field string) map[string]any {
		b := decryptBody(enc, aad)
		raw := b64(t, enc[field])
		raw[0] ^= 1
		b[field] = base64.StdEncoding.EncodeToString(raw)
		return b
	}
	cases := map[string]map[string]any{
		"ciphertext": flip("ciphertext"), "tag": flip("authenticationTag"), "iv": flip("initializationVector"),
		"metadata": flip("ciphertextMetadata"), "wrong AAD": decryptBody(enc, []byte("project=amazon")), "no AAD": decryptBody(enc, nil),
	}
	for name, body := range cases {
		if st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/k1/decrypt", cred1, body); st != 400 || out["errorName"] != "InvalidCiphertextException" {
			t.Errorf("%s: %d %v", name, st, out)
		}
	}
	if st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/k2/decrypt", cred1, decryptBody(enc, aad)); st != 400 || out["errorName"] != "InvalidCiphertextException" {
		t.Errorf("other key: %d %v", st, out)
	}
}

func TestMetadataAndKeyStatus(t *testing.T) {
	s := newStore(t)
	base := newProxy(t, s, testConfig("k1"))
	url := base + "/tenant1/kms/xks/v1/keys/k1/metadata"
	st, out := call(t, nil, url, cred1, map[string]any{"requestMetadata": map[string]any{
		"awsPrincipalArn": alice, "kmsOperation": "CreateKey", "kmsRequestId": "r1"}})
	if st != 200 || out["keySpec"] != "AES_256" || out["keyStatus"] != "ENABLED" || len(out["keyUsage"].([]any)) != 2 {
		t.Fatalf("metadata: %d %v", st, out)
	}
	enc := roundTrip(t, base, "k1", []byte("before"), nil)
	if err := serverstore.Of(s).SetKeyEnabled(context.Background(), "k1", false); err != nil {
		t.Fatal(err)
	}
	if _, out = call(t, nil, url, cred1, map[string]any{"requestMetadata": meta(alice, "DescribeKey")}); out["keyStatus"] != "DISABLED" {
		t.Errorf("disabled key's metadata: %v", out)
	}
	st, out = call(t, nil, base+"/tenant1/kms/xks/v1/keys/k1/encrypt", cred1, map[string]any{
		"requestMetadata": meta(alice, "Encrypt"), "plaintext": []byte("x"), "encryptionAlgorithm": "AES_GCM"})
	if st != 400 || out["errorName"] != "InvalidStateException" {
		t.Errorf("encrypt with a disabled key: %d %v", st, out)
	}
	if st, out = call(t, nil, base+"/tenant1/kms/xks/v1/keys/k1/decrypt", cred1, decryptBody(enc, nil)); st != 400 || out["errorName"] != "InvalidStateException" {
		t.Errorf("decrypt with a disabled key: %d %v", st, out)
	}
}

func TestValidationErrors(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	url := base + "/tenant1/kms/xks/v1/keys/k1/encrypt"
	good := func() map[string]any {
		return map[string]any{"requestMetadata": meta(alice, "Encrypt"), "plaintext": []byte("x"), "encryptionAlgorithm": "AES_GCM"}
	}
	cases := map[string]func(m map[string]any){
		"no requestMetadata":    func(m map[string]any) { delete(m, "requestMetadata") },
		"empty requestMetadata": func(m map[string]any) { m["requestMetadata"] = map[string]any{} },
		"no awsPrincipalArn":    func(m map[string]any) { delete(m["requestMetadata"].(map[string]any), "awsPrincipalArn") },
		"no kmsKeyArn":          func(m map[string]any) { delete(m["requestMetadata"].(map[string]any), "kmsKeyArn") },
		"no kmsOperation":       func(m map[string]any) { delete(m["requestMetadata"].(map[string]any), "kmsOperation") },
		"no kmsRequestId":       func(m map[string]any) { delete(m["requestMetadata"].(map[string]any), "kmsRequestId") },
		"no plaintext":          func(m map[string]any) { delete(m, "plaintext") },
		"no algorithm":          func(m map[string]any) { delete(m, "encryptionAlgorithm") },
		"other algorithm":       func(m map[string]any) { m["encryptionAlgorithm"] = "AES_CBC" },
		"other CDIV algorithm":  func(m map[string]any) { m["ciphertextDataIntegrityValueAlgorithm"] = "MD5" },
		"plaintext not Base64":  func(m map[string]any) { m["plaintext"] = "!!" },
	}
	for name, mutate := range cases {
		m := good()
		mutate(m)
		if st, out := call(t, nil, url, cred1, m); st != 400 || out["errorName"] != "ValidationException" {
			t.Errorf("%s: %d %v", name, st, out)
		}
	}
	m := good()
	m["requestMetadata"].(map[string]any)["kmsOperation"] = "BulkEncrypt" // unknown operations are accepted
	if st, out := call(t, nil, url, cred1, m); st != 200 {
		t.Errorf("unknown kmsOperation: %d %v", st, out)
	}
	m = good()
	m["additionalAuthenticatedData"] = random(8193)
	if st, out := call(t, nil, url, cred1, m); st != 501 || out["errorName"] != "UnsupportedOperationException" {
		t.Errorf("8,193-byte AAD: %d %v", st, out)
	}
}

func TestPathsMethodsAndKeys(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	body := map[string]any{"requestMetadata": meta(alice, "CreateKey")}
	for path, want := range map[string]string{
		"/tenant1/kms/xks/v1/keys/k2/metadata":      "KeyNotFoundException", // in the store, not allow-listed
		"/tenant1/kms/xks/v1/keys/nokey/metadata":   "KeyNotFoundException",
		"/tenant2/kms/xks/v1/keys/k1/metadata":      "InvalidUriPathException",
		"/kms/xks/v1/keys/k1/metadata":              "InvalidUriPathException",
		"/tenant1/kms/xks/v1/keys/k1/sign":          "InvalidUriPathException",
		"/tenant1/kms/xks/v2/keys/k1/metadata":      "InvalidUriPathException",
		"/tenant1/kms/xks/v1/keys/k1/metadata/more": "InvalidUriPathException",
	} {
		st, out := call(t, nil, base+path, cred1, body)
		if out["errorName"] != want || (st != 404) {
			t.Errorf("%s: %d %v, want 404 %s", path, st, out, want)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, base+"/tenant1/kms/xks/v1/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 405", m, resp.StatusCode)
		}
	}
}

func TestAuthentication(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	url := base + "/tenant1/kms/xks/v1/health"
	body := map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h1", "kmsOperation": "KmsHealthCheck"}}
	for _, c := range []struct {
		name string
		cred xksCred
	}{
		{"unknown access key", xksCred{"AKIAXKSUNKNOWN2345672", cred1.SecretAccessKey}},
		{"wrong secret", xksCred{cred1.AccessKeyID, cred2.SecretAccessKey}},
	} {
		st, out := call(t, nil, url, c.cred.credential(), body)
		if st != 401 || out["errorName"] != "AuthenticationFailedException" {
			t.Errorf("%s: %d %v", c.name, st, out)
		}
	}
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"requestMetadata":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("unsigned: %d", resp.StatusCode)
	}
}

func TestPolicyByPrincipalArn(t *testing.T) {
	s := newStore(t)
	base := newProxy(t, s, testConfig("k1"))
	url := base + "/tenant1/kms/xks/v1/keys/k1/encrypt"
	for principal, want := range map[string]int{
		alice: 200, "arn:aws:iam::123456789012:user/Mallory": 403, "arn:aws:iam::999999999999:user/Eve": 403,
	} {
		st, out := call(t, nil, url, cred1, map[string]any{"requestMetadata": meta(principal, "Encrypt"),
			"plaintext": []byte("x"), "encryptionAlgorithm": "AES_GCM"})
		if st != want || (want == 403 && out["errorName"] != "AccessDeniedException") {
			t.Errorf("%s: %d %v, want %d", principal, st, out, want)
		}
	}
	rc, err := s.Gate().AuditLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	log, _ := io.ReadAll(rc)
	var allow, deny int
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.Contains(line, `"request_id":"4112f4d6-db54-4af4-ae30-c55a22a8dfae"`) || !strings.Contains(line, "service:xks") {
			continue
		}
		switch {
		case strings.Contains(line, `"Allow"`):
			allow++
		case strings.Contains(line, `"Deny"`):
			deny++
		}
	}
	if allow != 1 || deny != 2 {
		t.Errorf("audit entries with the kmsRequestId: %d allowed, %d denied; want 1 and 2", allow, deny)
	}
}

func TestHealth(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	st, out := call(t, nil, base+"/tenant1/kms/xks/v1/health", cred2,
		map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h1", "kmsOperation": "KmsHealthCheck"}})
	if st != 200 || out["xksProxyFleetSize"] != float64(1) || out["xksProxyVendor"] == "" || out["ekmVendor"] == "" {
		t.Fatalf("health: %d %v", st, out)
	}
	fleet := out["ekmFleetDetails"].([]any)
	if len(fleet) != 1 || fleet[0].(map[string]any)["healthStatus"] != "ACTIVE" {
		t.Fatalf("health fleet: %v", fleet)
	}
}

type xksCred struct{ id, secret string }

func (c xksCred) credential() xks.Credential {
	return xks.Credential{AccessKeyID: c.id, SecretAccessKey: c.secret}
}

// TestCredentialRotation follows the specification's rotation sequence on
// a running handler: add a new credential (old and new both accepted),
// then remove the old one (refused, the new one still accepted).
func TestCredentialRotation(t *testing.T) {
	cfg := &xks.Config{HealthKey: "health", Prefixes: []xks.Prefix{{Path: "/tenant1", Credentials: []xks.Credential{cred1}, Keys: []string{"k1"}}}}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	h := xks.New(cfg, newStore(t))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := srv.URL + "/tenant1/kms/xks/v1/keys/k1/metadata"
	body := map[string]any{"requestMetadata": meta(alice, "DescribeKey")}
	expect := func(step string, c xks.Credential, want int) {
		t.Helper()
		if st, out := call(t, nil, url, c, body); st != want {
			t.Errorf("%s: %d %v, want %d", step, st, out, want)
		}
	}
	expect("before", cred2, 401)
	next := func(creds ...xks.Credential) {
		c := &xks.Config{HealthKey: "health", Prefixes: []xks.Prefix{{Path: "/tenant1", Credentials: creds, Keys: []string{"k1"}}}}
		if err := c.Check(); err != nil {
			t.Fatal(err)
		}
		h.SetConfig(c)
	}
	next(cred1, cred2)
	expect("both, old", cred1, 200)
	expect("both, new", cred2, 200)
	next(cred2)
	expect("after, old", cred1, 401)
	expect("after, new", cred2, 200)
}

// TestDecryptAndMetadataValidation: decrypt without each required field,
// with another algorithm or without request metadata, and metadata
// without request metadata or a principal, are ValidationException (400).
func TestDecryptAndMetadataValidation(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	enc := roundTrip(t, base, "k1", []byte("x"), nil)
	cases := map[string]func(m map[string]any){
		"no ciphertext":           func(m map[string]any) { delete(m, "ciphertext") },
		"no authenticationTag":    func(m map[string]any) { delete(m, "authenticationTag") },
		"no initializationVector": func(m map[string]any) { delete(m, "initializationVector") },
		"no algorithm":            func(m map[string]any) { delete(m, "encryptionAlgorithm") },
		"other algorithm":         func(m map[string]any) { m["encryptionAlgorithm"] = "AES_CBC" },
		"no requestMetadata":      func(m map[string]any) { delete(m, "requestMetadata") },
		"empty requestMetadata":   func(m map[string]any) { m["requestMetadata"] = map[string]any{} },
		"no kmsKeyArn":            func(m map[string]any) { delete(m["requestMetadata"].(map[string]any), "kmsKeyArn") },
		"not JSON":                nil,
	}
	for name, mutate := range cases {
		var body any = "not an object"
		if mutate != nil {
			m := decryptBody(enc, nil)
			mutate(m)
			body = m
		}
		if st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/k1/decrypt", cred1, body); st != 400 || out["errorName"] != "ValidationException" {
			t.Errorf("decrypt, %s: %d %v", name, st, out)
		}
	}
	for name, body := range map[string]map[string]any{
		"no requestMetadata": {},
		"no awsPrincipalArn": {"requestMetadata": map[string]any{"kmsOperation": "DescribeKey", "kmsRequestId": "r"}},
		"no kmsRequestId":    {"requestMetadata": map[string]any{"awsPrincipalArn": alice, "kmsOperation": "DescribeKey"}},
	} {
		if st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/k1/metadata", cred1, body); st != 400 || out["errorName"] != "ValidationException" {
			t.Errorf("metadata, %s: %d %v", name, st, out)
		}
	}
}

// TestHealthFleet: each health key (one per backend) is a fleet entry
// with its own status: a disabled one is UNAVAILABLE beside an ACTIVE
// one; a health key given twice is a configuration error.
func TestHealthFleet(t *testing.T) {
	s := newStore(t)
	if err := serverstore.Of(s).SetKeyEnabled(context.Background(), "k2", false); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("k1")
	cfg.HealthKeys = []string{"k2"}
	base := newProxy(t, s, cfg)
	_, out := call(t, nil, base+"/tenant1/kms/xks/v1/health", cred1,
		map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h1", "kmsOperation": "KmsHealthCheck"}})
	fleet := out["ekmFleetDetails"].([]any)
	status := map[string]any{}
	for _, m := range fleet {
		status[m.(map[string]any)["id"].(string)] = m.(map[string]any)["healthStatus"]
	}
	if len(fleet) != 2 || status["keystack-health"] != "ACTIVE" || status["keystack-k2"] != "UNAVAILABLE" {
		t.Fatalf("fleet: %v", fleet)
	}
	cfg = testConfig("k1")
	cfg.HealthKeys = []string{"k2", "k2"}
	if err := cfg.Check(); !errors.Is(err, xks.ErrConfig) {
		t.Errorf("a health key twice: %v", err)
	}
}

// TestHealthCached: a health check is at most 30 seconds old (the
// specification allows a minute): the key disabled after a check still
// reads ACTIVE within that, UNAVAILABLE after.
func TestHealthCached(t *testing.T) {
	s := newStore(t)
	base, advance := clockedServer(t, testConfig("k1"), s)
	health := func() any {
		_, out := call(t, nil, base+"/tenant1/kms/xks/v1/health", cred1,
			map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h1", "kmsOperation": "KmsHealthCheck"}})
		return out["ekmFleetDetails"].([]any)[0].(map[string]any)["healthStatus"]
	}
	if st := health(); st != "ACTIVE" {
		t.Fatalf("first check: %v", st)
	}
	if err := serverstore.Of(s).SetKeyEnabled(context.Background(), "health", false); err != nil {
		t.Fatal(err)
	}
	advance(29 * time.Second)
	if st := health(); st != "ACTIVE" {
		t.Errorf("29 s later, cached: %v", st)
	}
	advance(2 * time.Second)
	if st := health(); st != "UNAVAILABLE" {
		t.Errorf("31 s later: %v", st)
	}
}
