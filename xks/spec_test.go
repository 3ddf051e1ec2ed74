package xks_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestSpecKeyIDsAndPaths holds the proxy to the specification's
// character rules: an externalKeyId is 1 to 128 of A-Z, a-z, 0-9, -, .
// and _ (a well-formed one not served is KeyNotFoundException, any other
// an invalid URI path); a path prefix uses letters, digits, -, _ and /,
// and with /kms/xks/v1 is at most 128 characters.
func TestSpecKeyIDsAndPaths(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	body := map[string]any{"requestMetadata": meta(alice, "CreateKey")}
	for id, want := range map[string]string{
		strings.Repeat("a", 128): "KeyNotFoundException",
		"a-b.c_D9":               "KeyNotFoundException",
		strings.Repeat("a", 129): "InvalidUriPathException",
		"k~1":                    "InvalidUriPathException",
		"k%201":                  "InvalidUriPathException",
		"":                       "InvalidUriPathException",
	} {
		st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/"+id+"/metadata", cred1, body)
		if out["errorName"] != want || st != http.StatusNotFound {
			t.Errorf("externalKeyId %.20q (%d characters): %d %v, want 404 %s", id, len(id), st, out, want)
		}
	}
	for path, ok := range map[string]bool{
		"/" + strings.Repeat("p", 116): true, // 128 with /kms/xks/v1
		"/" + strings.Repeat("p", 117): false,
		"/a.b":                         false,
		"/a b":                         false,
		"/a/":                          false,
		"/A-b_9/c":                     true,
	} {
		c := testConfig("k1")
		c.Prefixes[0].Path = path
		if err := c.Check(); (err == nil) != ok {
			t.Errorf("path prefix %.20q (%d characters): %v, want accepted %v", path, len(path), err, ok)
		}
	}
}

// TestSpecExamples: the specification's own GetKeyMetadata request, as
// AWS KMS sends it for CreateKey (no kmsKeyArn, no kmsViaService),
// answers AES_256, ENCRYPT and DECRYPT, ENABLED.
func TestSpecExamples(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/k1/metadata", cred1, map[string]any{"requestMetadata": map[string]any{
		"awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice", "kmsOperation": "CreateKey",
		"kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae"}})
	usage, _ := out["keyUsage"].([]any)
	if st != 200 || out["keySpec"] != "AES_256" || out["keyStatus"] != "ENABLED" || len(usage) != 2 || usage[0] != "ENCRYPT" || usage[1] != "DECRYPT" {
		t.Fatalf("the specification's GetKeyMetadata example: %d %v", st, out)
	}
}

// TestSpecCiphertextShapes: a decrypt whose ciphertextMetadata is
// missing or over the specification's 20 bytes, whose IV is 16 bytes
// (a length the specification allows, not one keystack produces) or
// whose tag is not 16 bytes is InvalidCiphertextException (400), never
// an internal error.
func TestSpecCiphertextShapes(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	enc := roundTrip(t, base, "k1", []byte("shape"), nil)
	for name, mutate := range map[string]func(map[string]any){
		"no ciphertextMetadata":        func(m map[string]any) { delete(m, "ciphertextMetadata") },
		"21-byte ciphertextMetadata":   func(m map[string]any) { m["ciphertextMetadata"] = random(21) },
		"16-byte initializationVector": func(m map[string]any) { m["initializationVector"] = random(16) },
		"15-byte authenticationTag":    func(m map[string]any) { m["authenticationTag"] = random(15) },
		"17-byte authenticationTag":    func(m map[string]any) { m["authenticationTag"] = random(17) },
	} {
		m := decryptBody(enc, nil)
		mutate(m)
		if st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/k1/decrypt", cred1, m); st != 400 || out["errorName"] != "InvalidCiphertextException" {
			t.Errorf("%s: %d %v", name, st, out)
		}
	}
}
