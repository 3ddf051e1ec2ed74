package xks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keystack/keystack/internal/pkcs11token"
	"github.com/keystack/keystack/xks"
)

// BenchmarkHandler measures the proxy's own work per request (routing,
// SigV4, JSON, policy, audit, the key operation; no network) for encrypt
// (CDIV requested, so it also decrypts once) and decrypt on a local key
// and a SoftHSM2 key. Its baseline, in the same run, is
// BenchmarkRawPKCS11: the bare CKM_AES_GCM seal and open on the same
// token, which every SoftHSM2 request must pay.
func BenchmarkHandler(b *testing.B) {
	s := newStore(b)
	addHSMKey(b, s, "benchhsm")
	cfg := testConfig("k1", "benchhsm")
	if err := cfg.Check(); err != nil {
		b.Fatal(err)
	}
	h := xks.New(cfg, s)
	for _, key := range []string{"k1", "benchhsm"} {
		base := "http://xks.test/tenant1/kms/xks/v1/keys/" + key + "/"
		encBody := map[string]any{"requestMetadata": meta(alice, "Encrypt"), "plaintext": random(32),
			"additionalAuthenticatedData": []byte("aad"), "encryptionAlgorithm": "AES_GCM", "ciphertextDataIntegrityValueAlgorithm": "SHA_256"}
		enc := serveOnce(b, h, base+"encrypt", encBody)
		for op, body := range map[string]any{"encrypt": encBody, "decrypt": decryptBody(enc, []byte("aad"))} {
			b.Run(map[string]string{"k1": "local", "benchhsm": "SoftHSM2"}[key]+"/"+op, func(b *testing.B) {
				raw, _ := json.Marshal(body)
				req, err := signed(base+op, raw)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					r := req.Clone(context.Background())
					r.Body = nopCloser{bytes.NewReader(raw)}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func serveOnce(b *testing.B, h http.Handler, url string, body any) map[string]any {
	raw, _ := json.Marshal(body)
	req, err := signed(url, raw)
	if err != nil {
		b.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != 200 {
		b.Fatalf("%d %s", w.Code, w.Body)
	}
	return out
}

// BenchmarkRawPKCS11 is BenchmarkHandler's baseline: CKM_AES_GCM seal
// then open of 32 bytes under an AES-256 SoftHSM2 key through package
// hsm's session pool, the token work of one XKS encrypt with CDIV.
func BenchmarkRawPKCS11(b *testing.B) {
	requireSoftHSM(b)
	ctx := context.Background()
	tok, err := pkcs11token.Open(ctx, &pkcs11token.URI{Token: "X", Module: softhsmModule}, pkcs11token.Options{Prompt: func(context.Context, string) (string, error) { return "1234", nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer tok.Close()
	label := tokenLabel("rawbench")
	if err := tok.GenerateAESKey(ctx, label, []byte(label)); err != nil {
		b.Fatal(err)
	}
	kr, err := tok.AESKeyring(ctx, label)
	if err != nil {
		b.Fatal(err)
	}
	pt, aad := random(32), random(64)
	b.ReportAllocs()
	for b.Loop() {
		iv, ct, err := kr.SealRaw(ctx, pt, aad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kr.OpenRaw(ctx, iv, ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}
