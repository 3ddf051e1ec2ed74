package xks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keystack/keystack/internal/kmswire"
)

// TestSigV4FastPath: for requests signed by aws-sdk-go-v2 in many shapes
// (extra signed headers, ports, empty bodies, escaped paths, queries,
// repeated and padded header values, session tokens), the signature
// expectedSignature computes equals the SDK's own (kmswire's re-signing)
// and the one the client sent; the common shapes take the fast path; a
// changed body, header, path or secret changes the fast path's answer.
func TestSigV4FastPath(t *testing.T) {
	const secret = "c2VjcmV0LW9uZS0zMi1ieXRlcy1vZi1lbnRyb3B5ISE="
	h := &Handler{}
	type shape struct {
		url, body, token string
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
	}
	for i, sh := range shapes {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, sh.url, bytes.NewReader([]byte(sh.body)))
			for _, kv := range sh.headers {
				req.Header.Add(kv[0], kv[1])
			}
			out := req.Clone(context.Background())
			out.Host = req.Host
			sum := sha256.Sum256([]byte(sh.body))
			creds := aws.Credentials{AccessKeyID: "AKIAXKSTESTONE2345672", SecretAccessKey: secret, SessionToken: sh.token}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, out, hex.EncodeToString(sum[:]), service, "eu-west-1", time.Now()); err != nil {
				t.Fatal(err)
			}
			req.Header = out.Header
			sig, aerr := kmswire.ParseAuthorization(req.Header.Get("Authorization"), service)
			if aerr != nil {
				t.Fatal(aerr)
			}
			sdk, err := sig.Expected(req, []byte(sh.body), secret)
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.expectedSignature(req, sig, []byte(sh.body), secret)
			if err != nil || got != sdk || got != sig.Signature {
				t.Fatalf("expectedSignature %s (%v), SDK %s, sent %s", got, err, sdk, sig.Signature)
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
					r.Header.Set("X-Amz-Date", time.Now().Add(time.Second).UTC().Format(kmswire.AmzDateFormat))
					return []byte(sh.body), secret
				},
			} {
				r := req.Clone(context.Background())
				body, sec := change(r)
				if got, _ := h.expectedSignature(r, sig, body, sec); got == sig.Signature {
					t.Errorf("changed %s: the signature still matches", name)
				}
			}
		})
	}
}

// BenchmarkSigV4 compares, in one run, the signature check of a typical
// XKS request by re-signing through aws-sdk-go-v2 (sdk, the baseline)
// with expectedSignature's own canonicalization and cached key (fast).
func BenchmarkSigV4(b *testing.B) {
	const secret = "c2VjcmV0LW9uZS0zMi1ieXRlcy1vZi1lbnRyb3B5ISE="
	body := bytes.Repeat([]byte("x"), 400)
	req := httptest.NewRequest(http.MethodPost, "http://xks.example.com/acme/kms/xks/v1/keys/k1/encrypt", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "AKIAXKSTESTONE2345672", SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "eu-west-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	sig, aerr := kmswire.ParseAuthorization(req.Header.Get("Authorization"), service)
	if aerr != nil {
		b.Fatal(aerr)
	}
	h := &Handler{}
	for name, check := range map[string]func() (string, error){
		"sdk":  func() (string, error) { return sig.Expected(req, body, secret) },
		"fast": func() (string, error) { return h.expectedSignature(req, sig, body, secret) },
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
