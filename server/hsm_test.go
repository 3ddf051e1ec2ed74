package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/internal/pkcs11token"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

const testCustomKeyStore = "cks-0123456789abcdef0"

// softHSMToken makes a SoftHSM2 token "T" (PIN 1234 in a pin file) in a
// directory of its own and returns the module path and the token's URI. It
// skips without SoftHSM2, and fails instead under CI=true.
func softHSMToken(t *testing.T) (module, uri string) {
	t.Helper()
	module = os.Getenv("KEYSTACK_TEST_PKCS11_MODULE")
	if module == "" {
		module = "/usr/lib/softhsm/libsofthsm2.so"
	}
	util, err := exec.LookPath("softhsm2-util")
	if _, serr := os.Stat(module); serr != nil || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SoftHSM2 is required under CI=true (module %s, softhsm2-util: %v)", module, err)
		}
		t.Skipf("skipping: SoftHSM2 not installed (apt-get install softhsm2, or make test-prereqs)")
	}
	dir := t.TempDir()
	tokens, conf, pin := filepath.Join(dir, "tokens"), filepath.Join(dir, "softhsm2.conf"), filepath.Join(dir, "pin")
	cfg := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	for _, err := range []error{os.Mkdir(tokens, 0o700), os.WriteFile(conf, []byte(cfg), 0o600), os.WriteFile(pin, []byte("1234\n"), 0o600)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command(util, "--init-token", "--free", "--label", "T", "--so-pin", "12345678", "--pin", "1234").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v: %s", err, bytes.TrimSpace(out))
	}
	return module, "pkcs11:token=T?pin-source=file:" + pin
}

// TestHSMBackedKeys: CreateKey with Origin AWS_CLOUDHSM and a configured
// CustomKeyStoreId makes a non-extractable AES-256 key on a SoftHSM2 token
// (nothing of it in keystore.json), described as AWS describes CloudHSM
// keys; GenerateDataKey, Encrypt, Decrypt, ReEncrypt and RotateKeyOnDemand
// work on it through the unmodified aws-sdk-go-v2; a wrong context is
// InvalidCiphertextException; unknown or inconsistent stores are refused.
func TestHSMBackedKeys(t *testing.T) {
	module, tokenURI := softHSMToken(t)
	current = t
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ks")
	s := must(keystore.Init(dir, keystore.InitOptions{Passphrase: []byte("pw"), KDF: "scrypt", Owner: owner}))
	_ = s.Close()
	be := hsm.NewBackend(hsm.Options{ModulePath: module})
	t.Cleanup(func() { _ = be.Close() })
	s = must(keystore.Open(dir, keystore.OpenOptions{Principal: owner, Backends: map[string]keystore.Backend{keystore.BackendPKCS11: be},
		Passphrase: func() ([]byte, error) { return []byte("pw"), nil }}))
	cred := must(s.CreateCredential(ctx, owner))
	srv := must(server.New(server.Config{Store: s, Region: "eu-west-1", Account: "444455556666",
		CustomKeyStores: map[string]string{testCustomKeyStore: tokenURI}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(func() { _ = s.Close() })
	url, _ := serveWith(t, srv, server.ListenConfig{HTTPAddr: "127.0.0.1:0"})
	c := clientFor(url, cred.AccessKeyID, cred.Secret)

	md := must(c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm,
		CustomKeyStoreId: aws.String(testCustomKeyStore), Description: aws.String("on the token")})).KeyMetadata
	if md.Origin != types.OriginTypeAwsCloudhsm || aws.ToString(md.CustomKeyStoreId) != testCustomKeyStore || !md.Enabled {
		t.Fatalf("CreateKey metadata: origin %s, store %v, enabled %v", md.Origin, aws.ToString(md.CustomKeyStoreId), md.Enabled)
	}
	id := aws.ToString(md.KeyId)
	checkTokenObject(t, module, tokenURI, id+"/v1")
	if raw, _ := os.ReadFile(filepath.Join(dir, "keystore.json")); !bytes.Contains(raw, []byte(`"backend": "pkcs11"`)) {
		t.Fatal("keystore.json does not record the key as a pkcs11 key")
	}
	if info := must(s.DescribeKey(ctx, id)); info.Backend != keystore.BackendPKCS11 || len(info.Versions) != 1 {
		t.Fatalf("store key: %+v", info)
	}
	hsmRoundTrips(t, c, id)

	must(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}))
	checkTokenObject(t, module, tokenURI, id+"/v2")
	hsmRoundTrips(t, c, id)

	_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm, CustomKeyStoreId: aws.String("cks-nosuch")})
	wantCode(t, "unknown custom key store", err, "CustomKeyStoreNotFoundException")
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm})
	wantCode(t, "AWS_CLOUDHSM without a store", err, "ValidationException")
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{CustomKeyStoreId: aws.String(testCustomKeyStore)})
	wantCode(t, "a store with Origin AWS_KMS", err, "UnsupportedOperationException")
	local := must(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata
	if local.Origin != types.OriginTypeAwsKms || local.CustomKeyStoreId != nil {
		t.Fatalf("a local key described as origin %s, store %v", local.Origin, aws.ToString(local.CustomKeyStoreId))
	}
}

// hsmRoundTrips runs the data operations on key id and checks that a
// ciphertext under one context does not decrypt under another.
func hsmRoundTrips(t *testing.T, c *kms.Client, id string) {
	t.Helper()
	ctx := context.Background()
	ec := map[string]string{"tenant": "acme"}
	dk := must(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec}))
	pt := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec}))
	if !bytes.Equal(pt.Plaintext, dk.Plaintext) || aws.ToString(pt.KeyId) != aws.ToString(dk.KeyId) {
		t.Fatal("GenerateDataKey's data key does not decrypt to itself")
	}
	_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: map[string]string{"tenant": "other"}})
	wantCode(t, "wrong context", err, "InvalidCiphertextException")
	enc := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("token secret"), EncryptionContext: ec}))
	re := must(c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: aws.String(id),
		SourceEncryptionContext: ec, DestinationEncryptionContext: ec}))
	out := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: ec}))
	if string(out.Plaintext) != "token secret" {
		t.Fatalf("Encrypt/ReEncrypt/Decrypt gave %q", out.Plaintext)
	}
}

// checkTokenObject fails unless the token holds an AES-256 secret key
// labeled label.
func checkTokenObject(t *testing.T, module, tokenURI, label string) {
	t.Helper()
	tok := must(pkcs11token.Open(context.Background(), must(pkcs11token.ParseURI(tokenURI)), pkcs11token.Options{ModulePath: module}))
	defer tok.Close()
	for _, o := range must(tok.ListObjects(context.Background())) {
		if o.Label == label && o.Type == pkcs11token.TypeSecretKey && o.KeyType == "AES" && o.Bits == 256 {
			return
		}
	}
	t.Fatalf("no AES-256 secret key %q on the token", label)
}
