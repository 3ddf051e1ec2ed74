package xks_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/keystack/keystack/keystore"
)

// addTokenKey generates an AES-256 key on the SoftHSM2 token (labeled
// tokenLabel(name)) with CKA_ENCRYPT and CKA_DECRYPT as given (package hsm makes
// keys that do both) and registers it in s as key name.
func addTokenKey(t *testing.T, s *keystore.Store, name string, encrypt, decrypt bool) {
	t.Helper()
	requireSoftHSM(t)
	label := tokenLabel(name)
	p := pkcs11.New(softhsmModule)
	if p == nil {
		t.Fatal("cannot load the SoftHSM2 module")
	}
	if err := p.Initialize(); err != nil && err != pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var slot uint
	found := false
	for _, sl := range slots {
		if ti, err := p.GetTokenInfo(sl); err == nil && ti.Label == "X" {
			slot, found = sl, true
		}
	}
	if !found {
		t.Fatal("token X not found")
	}
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseSession(sh)
	if err := p.Login(sh, pkcs11.CKU_USER, "1234"); err != nil && err != pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatal(err)
	}
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, encrypt), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, decrypt),
	}
	if _, err := p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl); err != nil {
		t.Fatal(err)
	}
	ref := "pkcs11:token=X;object=" + label + ";type=secret-key?module-path=" + softhsmModule
	if _, err := s.CreateKey(context.Background(), name, keystore.CreateKeyOptions{Backend: keystore.BackendPKCS11, Ref: ref}); err != nil {
		t.Fatal(err)
	}
}

// TestKeyUsage: keyUsage reports what the token lets a key do, and an
// operation a key cannot do is InvalidKeyUsageException (HTTP 400): a
// decrypt-only token key (CKA_ENCRYPT false) refuses encrypt, an
// encrypt-only one (CKA_DECRYPT false) encrypts (its ciphertext cannot
// be verified by decrypting it) and refuses decrypt; RSA keys, which
// cannot seal data, refuse every key API.
func TestKeyUsage(t *testing.T) {
	s := newStore(t)
	addTokenKey(t, s, "deconly", false, true)
	addTokenKey(t, s, "enconly", true, false)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportKey(context.Background(), "rsapub", keystore.ImportKeyOptions{RSAPublicKey: &priv.PublicKey}); err != nil {
		t.Fatal(err)
	}
	base := newProxy(t, s, testConfig("deconly", "enconly", "rsapub"))
	url := func(key, op string) string { return base + "/tenant1/kms/xks/v1/keys/" + key + "/" + op }
	usage := func(key string) []any {
		st, out := call(t, nil, url(key, "metadata"), cred1, map[string]any{"requestMetadata": meta(alice, "DescribeKey")})
		if st != 200 || out["keyStatus"] != "ENABLED" {
			t.Fatalf("%s metadata: %d %v", key, st, out)
		}
		return out["keyUsage"].([]any)
	}
	if u := usage("deconly"); len(u) != 1 || u[0] != "DECRYPT" {
		t.Errorf("decrypt-only keyUsage %v", u)
	}
	if u := usage("enconly"); len(u) != 1 || u[0] != "ENCRYPT" {
		t.Errorf("encrypt-only keyUsage %v", u)
	}
	encBody := map[string]any{"requestMetadata": meta(alice, "Encrypt"), "plaintext": random(32),
		"encryptionAlgorithm": "AES_GCM", "ciphertextDataIntegrityValueAlgorithm": "SHA_256"}
	wantUsageErr := func(name string, st int, out map[string]any) {
		t.Helper()
		if st != 400 || out["errorName"] != "InvalidKeyUsageException" {
			t.Errorf("%s: %d %v, want 400 InvalidKeyUsageException", name, st, out)
		}
	}
	st, out := call(t, nil, url("deconly", "encrypt"), cred1, encBody)
	wantUsageErr("encrypt with the decrypt-only key", st, out)
	st, enc := call(t, nil, url("enconly", "encrypt"), cred1, encBody)
	if st != 200 || enc["ciphertextDataIntegrityValue"] == nil {
		t.Fatalf("encrypt with the encrypt-only key: %d %v", st, enc)
	}
	st, out = call(t, nil, url("enconly", "decrypt"), cred1, decryptBody(enc, nil))
	wantUsageErr("decrypt with the encrypt-only key", st, out)
	for _, op := range []string{"metadata", "encrypt", "decrypt"} {
		body := map[string]any{"requestMetadata": meta(alice, "Encrypt"), "plaintext": random(32), "encryptionAlgorithm": "AES_GCM"}
		if op == "decrypt" {
			body = decryptBody(enc, nil)
		}
		st, out := call(t, nil, url("rsapub", op), cred1, body)
		wantUsageErr("RSA key "+op, st, out)
	}
}
