package kmswire

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// testService is the XKS proxy's SigV4 service name.
const testService = "kms-xks-proxy"

// TestSigV4FastPath: for requests signed by aws-sdk-go-v2 in many shapes
// (extra signed headers, ports, empty bodies, escaped paths, queries,
// repeated and padded header values, session tokens), the signature
// Verifier.Expected computes equals the SDK's own (kmswire's re-signing)
// and the one the client sent; the common shapes take the fast path; a
// changed body, header, path or secret changes the fast path's answer.
func TestSigV4FastPath(t *testing.T) {
	const secret = "c2VjcmV0LW9uZS0zMi1ieXRlcy1vZi1lbnRyb3B5ISE="
	v := &Verifier{}
	type shape struct {
		url, body, token string
		svc              string // kms-xks-proxy when empty
		headers          [][2]string
		fast             bool
	}
	shapes := []shape{
		{url: "http://xks.example.com/acme/kms/xks/v1/keys/k1/encrypt", body: `{"a":1}`, fast: true},
		{url: "http://127.0.0.1:8080/kms/xks/v1/health", body: `{}`, headers: [][2]string{{"Content-Type", "application/json"}}, fast: true},
		{url: "http://xks.example.com:80/kms/xks/v1/health", body: `{}`, fast: true},
		{url: "https://xks.example.com/kms/xks/v1/health", body: `{}`, headers: [][2]string{{"X-Custom", "a b"}}, fast: true},
		{url: "http://h/kms/xks/v1/keys/k%2F1/metadata", body: `{}`},
		{url: "http://h/kms/xks/v1/health?x=1&a=b", body: `{}`},
		{url: "http://h/kms/xks/v1/health", body: ``, fast: true},
		{url: "http://h/kms/xks/v1/health", body: `{}`, headers: [][2]string{{"X-Custom", "a  b "}}},
		{url: "http://h/kms/xks/v1/health", body: `{}`, headers: [][2]string{{"X-Custom", "a"}, {"X-Custom", "b"}}},
		{url: "http://h/kms/xks/v1/health", body: `{}`, token: "session-token"},
		{url: "http://127.0.0.1:43123/", body: `{"KeyId":"k"}`, svc: "kms", fast: true, headers: [][2]string{
			{"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Target", "TrentService.GenerateDataKey"}}},
		{url: "http://127.0.0.1:43123/", body: `{"KeyId":"k"}`, svc: "kms", token: "session-token"},
	}
	for i, sh := range shapes {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			svc := cmp.Or(sh.svc, testService)
			req := httptest.NewRequest(http.MethodPost, sh.url, bytes.NewReader([]byte(sh.body)))
			for _, kv := range sh.headers {
				req.Header.Add(kv[0], kv[1])
			}
			out := req.Clone(context.Background())
			out.Host = req.Host
			sum := sha256.Sum256([]byte(sh.body))
			creds := aws.Credentials{AccessKeyID: "AKIAXKSTESTONE2345672", SecretAccessKey: secret, SessionToken: sh.token}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, out, hex.EncodeToString(sum[:]), svc, "eu-west-1", time.Now()); err != nil {
				t.Fatal(err)
			}
			req.Header = out.Header
			sig, aerr := ParseAuthorization(req.Header.Get("Authorization"), svc)
			if aerr != nil {
				t.Fatal(aerr)
			}
			sdk, err := sig.Expected(req, []byte(sh.body), secret)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Expected(req, sig, []byte(sh.body), secret)
			if err != nil || got != sdk || got != sig.Signature {
				t.Fatalf("Verifier.Expected %s (%v), SDK %s, sent %s", got, err, sdk, sig.Signature)
			}
			if _, fast := canonicalRequest(req, sig, []byte(sh.body)); fast != sh.fast {
				t.Fatalf("fast path %v, want %v", fast, sh.fast)
			}
			if !sh.fast {
				return
			}
			for name, change := range map[string]func(r *http.Request) ([]byte, string){
				"body":   func(r *http.Request) ([]byte, string) { return []byte(sh.body + " "), secret },
				"secret": func(r *http.Request) ([]byte, string) { return []byte(sh.body), secret[1:] + "A" },
				"path":   func(r *http.Request) ([]byte, string) { r.URL.Path += "x"; return []byte(sh.body), secret },
				"host":   func(r *http.Request) ([]byte, string) { r.Host += "x"; return []byte(sh.body), secret },
				"date": func(r *http.Request) ([]byte, string) {
					r.Header.Set("X-Amz-Date", time.Now().Add(time.Second).UTC().Format(AmzDateFormat))
					return []byte(sh.body), secret
				},
			} {
				r := req.Clone(context.Background())
				body, sec := change(r)
				if got, _ := v.Expected(r, sig, body, sec); got == sig.Signature {
					t.Errorf("changed %s: the signature still matches", name)
				}
			}
		})
	}
}

// BenchmarkSigV4 compares, in one run, the signature check of a typical
// XKS request by re-signing through aws-sdk-go-v2 (sdk, the baseline)
// with Verifier.Expected's own canonicalization and cached key (fast).
func BenchmarkSigV4(b *testing.B) {
	const secret = "c2VjcmV0LW9uZS0zMi1ieXRlcy1vZi1lbnRyb3B5ISE="
	body := bytes.Repeat([]byte("x"), 400)
	req := httptest.NewRequest(http.MethodPost, "http://xks.example.com/acme/kms/xks/v1/keys/k1/encrypt", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "AKIAXKSTESTONE2345672", SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), testService, "eu-west-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	sig, aerr := ParseAuthorization(req.Header.Get("Authorization"), testService)
	if aerr != nil {
		b.Fatal(aerr)
	}
	v := &Verifier{}
	for name, check := range map[string]func() (string, error){
		"sdk":  func() (string, error) { return sig.Expected(req, body, secret) },
		"fast": func() (string, error) { return v.Expected(req, sig, body, secret) },
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got, err := check(); err != nil || got != sig.Signature {
					b.Fatalf("%s, %v", got, err)
				}
			}
		})
	}
}

// TestVerifierRotatedSecret: once a signing key for a secret is cached, a
// request signed with that old secret does not verify under the secret
// that replaced it under the same access key ID (and the same day,
// Region and service), and one signed with the new secret does; a
// signature one hex digit off never verifies.
func TestVerifierRotatedSecret(t *testing.T) {
	const (
		oldSecret = "b2xkLXNlY3JldC0zMi1ieXRlcy1vZi1lbnRyb3B5ISE="
		newSecret = "bmV3LXNlY3JldC0zMi1ieXRlcy1vZi1lbnRyb3B5ISE="
	)
	sign := func(secret string) (*http.Request, *SigV4) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:43123/", strings.NewReader(`{}`))
		req.Header.Set("X-Amz-Target", "TrentService.GenerateDataKey")
		sum := sha256.Sum256([]byte(`{}`))
		creds := aws.Credentials{AccessKeyID: "AKIASAMEKEYID0000001", SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", "eu-west-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		sig, aerr := ParseAuthorization(req.Header.Get("Authorization"), "kms")
		if aerr != nil {
			t.Fatal(aerr)
		}
		if _, fast := canonicalRequest(req, sig, []byte(`{}`)); !fast {
			t.Fatal("the request does not take the fast path")
		}
		return req, sig
	}
	v := &Verifier{}
	oldReq, oldSig := sign(oldSecret)
	if ok, err := v.Verify(oldReq, oldSig, []byte(`{}`), oldSecret); !ok || err != nil {
		t.Fatalf("the old secret's own signature: %v, %v", ok, err)
	}
	if ok, err := v.Verify(oldReq, oldSig, []byte(`{}`), newSecret); ok || err != nil {
		t.Fatalf("a signature by the replaced secret verified under the new one: %v, %v", ok, err)
	}
	newReq, newSig := sign(newSecret)
	if ok, err := v.Verify(newReq, newSig, []byte(`{}`), newSecret); !ok || err != nil {
		t.Fatalf("the new secret's signature: %v, %v", ok, err)
	}
	flip := "0"
	if newSig.Signature[63] == '0' {
		flip = "1"
	}
	newSig.Signature = newSig.Signature[:63] + flip
	if ok, _ := v.Verify(newReq, newSig, []byte(`{}`), newSecret); ok {
		t.Fatal("a signature one digit off verified")
	}
}
