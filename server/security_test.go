package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

// TestPolicyDecidesEveryRequest: principals authenticated by SigV4 get
// exactly what the keystore's policy grants them, with the key's tags,
// the encryption context and the auth method as condition keys, and every
// decision lands in the audit log with request ID, method and source.
func TestPolicyDecidesEveryRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice, billing, ops := f.client(owner), f.client("service:billing"), f.client("service:ops")
	tagged, untagged := createKey(t, alice, "billing"), createKey(t, alice, "")
	ec := map[string]string{"tenant": "acme"}
	enc := must(billing.Encrypt(ctx, &kms.EncryptInput{KeyId: tagged.KeyId, Plaintext: []byte("p"), EncryptionContext: ec}))
	if got := must(billing.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})); string(got.Plaintext) != "p" {
		t.Errorf("billing decrypts %q", got.Plaintext)
	}
	must(billing.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: tagged.KeyId, KeySpec: types.DataKeySpecAes256}))
	locked := map[string]string{"tenant": "locked"}
	lenc := must(alice.Encrypt(ctx, &kms.EncryptInput{KeyId: tagged.KeyId, Plaintext: []byte("p"), EncryptionContext: locked}))
	denied := map[string]func() error{
		"decrypt for tenant locked (explicit Deny)": func() error {
			_, err := billing.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: lenc.CiphertextBlob, EncryptionContext: locked})
			return err
		},
		"owner decrypt for tenant locked": func() error {
			_, err := alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: lenc.CiphertextBlob, EncryptionContext: locked})
			return err
		},
		"encrypt under an untagged key": func() error {
			_, err := billing.Encrypt(ctx, &kms.EncryptInput{KeyId: untagged.KeyId, Plaintext: []byte("p")})
			return err
		},
		"create a key": func() error { _, err := billing.CreateKey(ctx, &kms.CreateKeyInput{}); return err },
		"retag the key to widen its grant": func() error {
			_, err := billing.TagResource(ctx, &kms.TagResourceInput{KeyId: untagged.KeyId,
				Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("billing")}}})
			return err
		},
		"generate random": func() error {
			_, err := billing.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
			return err
		},
		"ops encrypts": func() error {
			_, err := ops.Encrypt(ctx, &kms.EncryptInput{KeyId: tagged.KeyId, Plaintext: []byte("p")})
			return err
		},
		"ops disables a key": func() error {
			_, err := ops.DisableKey(ctx, &kms.DisableKeyInput{KeyId: tagged.KeyId})
			return err
		},
	}
	for what, do := range denied {
		wantCode(t, what, do(), "AccessDeniedException")
	}
	if l := must(ops.ListKeys(ctx, &kms.ListKeysInput{})); len(l.Keys) != 2 {
		t.Errorf("ops lists %d keys", len(l.Keys))
	}
	records := auditRecords(t, f)
	var allow, deny int
	for _, e := range records {
		if e.Principal != "service:billing" {
			continue
		}
		if e.AuthMethod != "sigv4" || e.Source != "127.0.0.1" || len(e.RequestID) != 36 {
			t.Errorf("billing's record lacks its request: %+v", e)
		}
		switch e.Decision {
		case "Allow":
			allow++
		case "Deny":
			deny++
		}
	}
	if allow < 3 || deny < 5 {
		t.Errorf("audit log: %d allows and %d denials for billing", allow, deny)
	}
}

func auditRecords(t *testing.T, f *fixture) []audit.Entry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// rawCall posts a ListKeys request signed (unless akid is empty) at when,
// and returns the status and the KMS error name.
func rawCall(t *testing.T, url, akid, secret, region string, body []byte, when time.Time, tamper func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
	if akid != "" {
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", region, when); err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Type string `json:"__type"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Type
}

// TestAuthenticationRefusals: requests that are unsigned, signed with a
// wrong or revoked secret, for another Region, stale, replayed with a
// changed body, or oversized are refused before any decision.
func TestAuthenticationRefusals(t *testing.T) {
	f := newFixture(t)
	c := f.creds["service:ops"]
	now, body := time.Now(), []byte("{}")
	if st, code := rawCall(t, f.url, c.AccessKeyID, c.Secret, "eu-west-1", body, now, nil); st != 200 {
		t.Fatalf("a good request: %d %s", st, code)
	}
	cases := []struct {
		what, akid, secret, region string
		when                       time.Time
		body                       []byte
		tamper                     func(*http.Request)
		code                       string
	}{
		{"unsigned", "", "", "", now, body, nil, "MissingAuthenticationTokenException"},
		{"wrong secret", c.AccessKeyID, c.Secret + "x", "eu-west-1", now, body, nil, "InvalidSignatureException"},
		{"unknown key", "KSAAAAAAAAAAAAAAAAAA", c.Secret, "eu-west-1", now, body, nil, "UnrecognizedClientException"},
		{"other region", c.AccessKeyID, c.Secret, "us-east-1", now, body, nil, "InvalidSignatureException"},
		{"6 minutes old", c.AccessKeyID, c.Secret, "eu-west-1", now.Add(-6 * time.Minute), body, nil, "InvalidSignatureException"},
		{"6 minutes ahead", c.AccessKeyID, c.Secret, "eu-west-1", now.Add(6 * time.Minute), body, nil, "InvalidSignatureException"},
		{"body changed after signing", c.AccessKeyID, c.Secret, "eu-west-1", now, body, func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(`{"Limit":1}`)), 11
		}, "InvalidSignatureException"},
		{"target changed after signing", c.AccessKeyID, c.Secret, "eu-west-1", now, body, func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "TrentService.CreateKey")
		}, "InvalidSignatureException"},
		{"session token", c.AccessKeyID, c.Secret, "eu-west-1", now, body, func(r *http.Request) {
			r.Header.Set("X-Amz-Security-Token", "x")
		}, "UnrecognizedClientException"},
		{"oversized", c.AccessKeyID, c.Secret, "eu-west-1", now, bytes.Repeat([]byte(" "), 65<<10), nil, "ValidationException"},
	}
	for _, tc := range cases {
		st, code := rawCall(t, f.url, tc.akid, tc.secret, tc.region, tc.body, tc.when, tc.tamper)
		if code != tc.code || st < 400 {
			t.Errorf("%s: %d %s, want %s", tc.what, st, code, tc.code)
		}
	}
	if err := f.store.RevokeCredential(context.Background(), c.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, code := rawCall(t, f.url, c.AccessKeyID, c.Secret, "eu-west-1", body, now, nil); code != "UnrecognizedClientException" {
		t.Errorf("revoked credential: %s", code)
	}
	resp, err := http.Get(f.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v %v", resp, err)
	}
	for _, e := range auditRecords(t, f) {
		if e.Principal == "service:ops" && e.Decision == "Allow" && e.Action != "keystack:ListKeys" {
			t.Errorf("a refused request reached a decision: %+v", e)
		}
	}
}

// TestNoSecretInLogs: the server's log names requests, never a secret, a
// plaintext or a data key.
func TestNoSecretInLogs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client(owner)
	k := createKey(t, c, "")
	secret := []byte("the plaintext must not be logged")
	enc := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyId, Plaintext: secret}))
	must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))
	dk := must(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256}))
	bad := clientFor(f.url, f.creds[owner].AccessKeyID, f.creds[owner].Secret+"x")
	_, err := bad.ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, "wrong secret", err, "InvalidSignatureException")
	logs := f.logs.String()
	if !strings.Contains(logs, "op=GenerateDataKey") || !strings.Contains(logs, "result=InvalidSignatureException") {
		t.Fatalf("the log does not record the requests:\n%s", logs)
	}
	for what, s := range map[string]string{"plaintext": string(secret), "plaintext (base64)": base64.StdEncoding.EncodeToString(secret),
		"data key (base64)": base64.StdEncoding.EncodeToString(dk.Plaintext), "data key (hex)": hex.EncodeToString(dk.Plaintext)} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the %s", what)
		}
	}
	for p, cr := range f.creds {
		if strings.Contains(logs, cr.Secret) {
			t.Errorf("the log holds %s's secret", p)
		}
	}
}

// TestRateLimitAndMetrics: a principal over its rate gets
// ThrottlingException while others are served, and /metrics counts
// requests by operation and result.
func TestRateLimitAndMetrics(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	st, err := keystore.Open(f.dir, keystore.OpenOptions{Principal: owner, Passphrase: func() ([]byte, error) { return []byte("pw"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	srv, err := server.New(server.Config{Store: st, Region: "eu-west-1", RateLimit: 0.001, RateBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	url, metricsURL := serveWith(t, srv, server.ListenConfig{HTTPAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0"})
	ops := clientFor(url, f.creds["service:ops"].AccessKeyID, f.creds["service:ops"].Secret)
	for i := range 2 {
		if _, err := ops.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	_, err = ops.ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, "over the rate", err, "ThrottlingException")
	alice := clientFor(url, f.creds[owner].AccessKeyID, f.creds[owner].Secret)
	if _, err := alice.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Errorf("another principal is throttled: %v", err)
	}
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`keystack_server_requests_total{op="ListKeys",result="ok"} 3`,
		`keystack_server_requests_total{op="ListKeys",result="ThrottlingException"} 1`,
		`keystack_server_request_duration_seconds_count{op="ListKeys"} 4`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}
