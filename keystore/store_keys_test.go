package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/esdktest"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keyring/keyringtest"
)

func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "app")
	enc1, err := s.EncryptKeyring(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	ki, err := s.RotateKey(ctx, "app", "scheduled")
	if err != nil {
		t.Fatal(err)
	}
	if ki.Primary != 2 || len(ki.Versions) != 2 || ki.Versions[0].State != StateDecryptOnly ||
		ki.Versions[1].State != StateEnabled || ki.Versions[1].History[0].Reason != "scheduled" {
		t.Fatalf("after rotation: %+v", ki)
	}
	enc2, err := s.EncryptKeyring(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := openTestStore(t, s.Dir(), testPass).DecryptKeyring(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	old := roundTrip(t, enc1, dec)
	edks := roundTrip(t, enc2, dec)
	if !bytes.HasPrefix(edks[0].ProviderInfo, []byte("app/v2")) || edks[0].ProviderID != keyring.ProviderLocal {
		t.Fatalf("new EDK is %s %q, want keystack app/v2…", edks[0].ProviderID, edks[0].ProviderInfo)
	}
	if !bytes.HasPrefix(old[0].ProviderInfo, []byte("app/v1")) {
		t.Fatalf("old EDK names %q", old[0].ProviderInfo)
	}
	if _, err := s.RotateKey(ctx, "absent", ""); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("RotateKey(absent): %v", err)
	}
}

func TestImportAES(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	for _, size := range []int{16, 24, 32} {
		key := make([]byte, size)
		rand.Read(key)
		name := aesKind(size)
		ki, err := s.ImportKey(ctx, name, ImportKeyOptions{AESKey: key})
		if err != nil || ki.Kind != name || ki.Namespace != "" {
			t.Fatalf("ImportKey(%d bytes) = %+v, %v", size, ki, err)
		}
		enc, err := s.EncryptKeyring(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		// The same key in a plain raw keyring with keystack's names decrypts.
		peer, err := keyring.NewRawAES(keyring.ProviderLocal, keyring.VersionedKeyName(name, 1), key)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, enc, peer)
	}
	if _, err := s.ImportKey(ctx, "bad", ImportKeyOptions{AESKey: make([]byte, 20)}); !errors.Is(err, keyring.ErrInvalidKey) {
		t.Fatalf("20-byte AES key: %v", err)
	}
	if _, err := s.ImportKey(ctx, "none", ImportKeyOptions{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("no material: %v", err)
	}
	if _, err := s.ImportKey(ctx, "half", ImportKeyOptions{AESKey: make([]byte, 32), Namespace: "ns"}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("namespace without key name: %v", err)
	}
}

func TestImportAESWithESDKNames(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	key := make([]byte, 32)
	rand.Read(key)
	const ns, kn = "aws-raw-vectors-persistant", "aes-256"
	if _, err := s.ImportKey(ctx, "vectors", ImportKeyOptions{AESKey: key, Namespace: ns, KeyName: kn}); err != nil {
		t.Fatal(err)
	}
	enc, err := s.EncryptKeyring(ctx, "vectors")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := keyring.NewRawAES(ns, kn, key)
	if err != nil {
		t.Fatal(err)
	}
	edks := roundTrip(t, enc, peer)
	if d := keyring.DescribeEDK(edks[0]); edks[0].ProviderID != ns || d.KeyName != kn {
		t.Fatalf("EDK named %q %q, want %q %q", edks[0].ProviderID, d.KeyName, ns, kn)
	}
	dec, err := s.DecryptKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, peer, dec)
	if _, err := s.RotateKey(ctx, "vectors", ""); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("rotating a key with fixed names: %v", err)
	}
}

func TestImportRSA(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	priv := rsaTestKey(t, 0)
	for _, p := range []keyring.RSAPadding{keyring.RSAOAEPSHA1, keyring.RSAOAEPSHA256, keyring.RSAOAEPSHA384, keyring.RSAOAEPSHA512} {
		name := "rsa-" + string(p)
		ki, err := s.ImportKey(ctx, name, ImportKeyOptions{RSAPrivateKey: priv, RSAPadding: p})
		if err != nil || ki.Kind != "rsa-2048" {
			t.Fatalf("import %s: %+v, %v", p, ki, err)
		}
		enc, err := s.EncryptKeyring(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := openTestStore(t, s.Dir(), testPass).DecryptKeyring(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, enc, dec)
	}
	if _, err := s.ImportKey(ctx, "rsa-pkcs1", ImportKeyOptions{RSAPrivateKey: priv, RSAPadding: keyring.RSAPKCS1}); err != nil {
		t.Fatalf("import PKCS#1 v1.5 key for reading: %v", err)
	}
	if _, err := s.RotateKey(ctx, "rsa-pkcs1", ""); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("rotating an RSA key: %v", err)
	}
	if _, err := s.ImportKey(ctx, "x", ImportKeyOptions{RSAPrivateKey: priv, RSAPublicKey: &rsaTestKey(t, 1).PublicKey}); !errors.Is(err, keyring.ErrInvalidKey) {
		t.Fatalf("mismatched pair: %v", err)
	}
	if _, err := s.ImportKey(ctx, "y", ImportKeyOptions{RSAPrivateKey: priv, RSAPadding: "oaep-md5"}); !errors.Is(err, keyring.ErrInvalidKey) {
		t.Fatalf("unknown padding: %v", err)
	}
}

func TestImportRSAPublicOnly(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	priv := rsaTestKey(t, 0)
	const ns, kn = "esdk-rsa", "rsa-4096-public"
	if _, err := s.ImportKey(ctx, "pub", ImportKeyOptions{RSAPublicKey: &priv.PublicKey, RSAPadding: keyring.RSAOAEPSHA512, Namespace: ns, KeyName: kn}); err != nil {
		t.Fatal(err)
	}
	// A public key encrypts without any passphrase.
	locked, err := Open(s.Dir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := locked.EncryptKeyring(ctx, "pub")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := keyring.NewRawRSA(ns, kn, keyring.RSAOAEPSHA512, nil, priv)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, enc, peer)
	if _, err := s.DecryptKeyring(ctx, "pub"); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("DecryptKeyring(public key): %v", err)
	}
	if _, err := s.DecryptKeyring(ctx); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("DecryptKeyring() with only a public key: %v", err)
	}
}

// storeKeyring encrypts with a store's EncryptKeyring and decrypts with a
// DecryptKeyring of a second Store on the same directory.
type storeKeyring struct{ enc, dec envelope.Keyring }

func (k storeKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	return k.enc.OnEncrypt(ctx, m)
}

func (k storeKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, e []envelope.EncryptedDataKey) error {
	return k.dec.OnDecrypt(ctx, m, e)
}

func newStoreKeyring(t *testing.T, rotations int, decryptAll bool) envelope.Keyring {
	t.Helper()
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	mustCreate(t, s, "other")
	for range rotations {
		if _, err := s.RotateKey(ctx, "k", "test"); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := s.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if !decryptAll {
		keys = []string{"k"}
	}
	dec, err := openTestStore(t, s.Dir(), testPass).DecryptKeyring(ctx, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return storeKeyring{enc: enc, dec: dec}
}

func TestStoreKeyringConformance(t *testing.T) {
	for _, c := range []struct {
		name       string
		rotations  int
		decryptAll bool
	}{{"v1", 0, false}, {"rotated", 2, false}, {"all-keys", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // stores of their own
			keyringtest.RunWithOptions(t,
				func(t *testing.T) envelope.Keyring { return newStoreKeyring(t, c.rotations, c.decryptAll) },
				// Another store's "k" has the same EDK names and other material.
				keyringtest.Options{OtherKey: func(t *testing.T) envelope.Keyring { return newStoreKeyring(t, c.rotations, c.decryptAll) }})
		})
	}
}

func TestTamperedStore(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "a")
	mustCreate(t, s, "b")
	path := filepath.Join(s.Dir(), metaFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(f map[string]any)) []byte {
		var f map[string]any
		if err := json.Unmarshal(orig, &f); err != nil {
			t.Fatal(err)
		}
		fn(f)
		out, _ := json.Marshal(f)
		return out
	}
	version := func(f map[string]any, key string) map[string]any {
		return f["keys"].(map[string]any)[key].(map[string]any)["versions"].([]any)[0].(map[string]any)
	}
	swapped := edit(func(f map[string]any) {
		a, b := version(f, "a"), version(f, "b")
		a["material"], b["material"] = b["material"], a["material"]
	})
	hugeKDF := edit(func(f map[string]any) { f["kdf"].(map[string]any)["memory_kib"] = 1 << 30 })
	cases := map[string][]byte{
		"swapped material": swapped,
		"huge KDF":         hugeKDF,
		"not JSON":         []byte("{"),
		"future format":    bytes.Replace(orig, []byte(`"format": 1`), []byte(`"format": 9`), 1),
		"oversized":        append(bytes.Repeat([]byte(" "), maxMetaSize), orig...),
		"bad name":         edit(func(f map[string]any) { f["keys"].(map[string]any)["../x"] = f["keys"].(map[string]any)["a"] }),
	}
	for what, data := range cases {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := Open(s.Dir(), OpenOptions{Passphrase: func() ([]byte, error) { return []byte(testPass), nil }})
		if err == nil {
			_, err = st.EncryptKeyring(ctx, "a")
		}
		if !errors.Is(err, ErrCorruptStore) {
			t.Errorf("%s: %v, want ErrCorruptStore", what, err)
		}
	}
}

// fakeBackend resolves refs to raw AES keyrings it keeps by ref, standing in
// for the AWS KMS and PKCS#11 backends registered by the CLI.
type fakeBackend struct{ keys map[string]envelope.Keyring }

func (b fakeBackend) Keyring(_ context.Context, ref string) (envelope.Keyring, error) {
	kr, ok := b.keys[ref]
	if !ok {
		return nil, errors.New("no such key")
	}
	return kr, nil
}

// onDemandFake is a fakeBackend that records RotateOnDemand calls.
type onDemandFake struct {
	fakeBackend
	rotated []string
}

func (b *onDemandFake) RotateOnDemand(_ context.Context, ref string) error {
	b.rotated = append(b.rotated, ref)
	return nil
}

// wrappingBackend wraps a backend as the CLI's lazy backend does, hiding
// its methods but for Keyring.
type wrappingBackend struct{ inner Backend }

func (w wrappingBackend) Keyring(ctx context.Context, ref string) (envelope.Keyring, error) {
	return w.inner.Keyring(ctx, ref)
}

func (w wrappingBackend) UnwrapBackend() Backend { return w.inner }

func TestBackendSpecs(t *testing.T) {
	ctx := context.Background()
	arn := "arn:aws:kms:us-east-1:111122223333:key/k1"
	uri := "pkcs11:token=t;object=k"
	kms := fakeBackend{keys: map[string]envelope.Keyring{arn: newTestAES(t, "kms", 32)}}
	hsm := fakeBackend{keys: map[string]envelope.Keyring{uri: newTestAES(t, "hsm", 32)}}
	s := newTestStore(t)
	s.backends = map[string]Backend{BackendAWSKMS: kms, BackendPKCS11: hsm}
	mustCreate(t, s, "local")
	if _, err := s.CreateKey(ctx, "kms", CreateKeyOptions{Backend: BackendAWSKMS, Ref: arn}); err != nil {
		t.Fatal(err)
	}
	for _, specs := range [][]string{{"local", arn}, {"aws-kms:" + arn, uri}, {"pkcs11:" + uri, "kms"}} {
		enc, err := s.EncryptKeyring(ctx, specs...)
		if err != nil {
			t.Fatalf("EncryptKeyring(%q): %v", specs, err)
		}
		dec, err := s.DecryptKeyring(ctx, specs[1])
		if err != nil {
			t.Fatal(err)
		}
		if edks := roundTrip(t, enc, dec); len(edks) != 2 {
			t.Fatalf("%q: %d EDKs, want 2", specs, len(edks))
		}
	}
	// A backend that cannot rotate makes RotateKey fail and change nothing.
	if _, err := s.RotateKey(ctx, "kms", "external rotation"); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("rotating a key whose backend cannot rotate: %v", err)
	}
	if ki := describe(t, s, "kms"); ki.Primary != 1 || len(ki.Versions) != 1 {
		t.Fatalf("a refused rotation changed the key: %+v", ki)
	}
	// One that can, behind a wrapper, rotates in place.
	rot := &onDemandFake{fakeBackend: kms}
	s.backends[BackendAWSKMS] = wrappingBackend{rot}
	ki, err := s.RotateKey(ctx, "kms", "external rotation")
	if err != nil || ki.Primary != 2 || ki.Versions[1].Ref != arn || ki.Versions[0].State != StateDecryptOnly ||
		!slices.Equal(rot.rotated, []string{arn}) {
		t.Fatalf("rotating an external key: %+v, %v (backend rotated %q)", ki, err, rot.rotated)
	}
	enc, err := s.EncryptKeyring(ctx, "kms")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := s.DecryptKeyring(ctx, "kms") // two versions, one external key: one keyring
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, enc, dec)
	_, err = s.EncryptKeyring(ctx, "vault:transit/k")
	if !errors.Is(err, ErrBackendUnavailable) || !strings.Contains(err.Error(), `"vault"`) {
		t.Fatalf("unknown backend: %v", err)
	}
	plain := openTestStore(t, s.Dir(), testPass) // no backends registered
	if _, err := plain.EncryptKeyring(ctx, "kms"); !errors.Is(err, ErrBackendUnavailable) {
		t.Fatalf("unregistered backend: %v", err)
	}
	if _, err := plain.DecryptKeyring(ctx); err != nil {
		t.Fatalf("DecryptKeyring() must skip keys of unregistered backends: %v", err)
	}
}

// vectorKeys is the subset of an ESDK test-vector key manifest
// (aws-crypto-tools-test-vector-framework, features/0002-keys.md) read here.
type vectorKeys struct {
	Keys map[string]struct {
		Type, Algorithm, Encoding, Material string
		KeyID                               string `json:"key-id"`
		Bits                                int
	}
}

func TestImportESDKVectorKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(esdktest.VectorsDir(t), "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vk vectorKeys
	if err := json.Unmarshal(data, &vk); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := newTestStore(t)
	aes, priv, pub := vk.Keys["aes-256"], vk.Keys["rsa-4096-private"], vk.Keys["rsa-4096-public"]
	key, err := base64.StdEncoding.DecodeString(aes.Material)
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, err := keyring.ParseRSAPrivateKeyPEM([]byte(priv.Material))
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := keyring.ParseRSAPublicKeyPEM([]byte(pub.Material))
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]ImportKeyOptions{
		"vec-aes":     {AESKey: key, Namespace: "aws-raw-vectors-persistant", KeyName: aes.KeyID},
		"vec-rsa":     {RSAPrivateKey: rsaPriv, RSAPadding: keyring.RSAOAEPSHA256, Namespace: "aws-raw-vectors-persistant", KeyName: priv.KeyID},
		"vec-rsa-pub": {RSAPublicKey: rsaPub, RSAPadding: keyring.RSAOAEPSHA256, Namespace: "aws-raw-vectors-persistant", KeyName: priv.KeyID},
	}
	for name, opts := range imports {
		ki, err := s.ImportKey(ctx, name, opts)
		if err != nil {
			t.Fatalf("import %s: %v", name, err)
		}
		if ki.Namespace != "aws-raw-vectors-persistant" || ki.KeyName != opts.KeyName {
			t.Fatalf("%s imported as %+v", name, ki)
		}
	}
	if ki, _ := s.DescribeKey(ctx, "vec-rsa"); ki.Kind != "rsa-4096" {
		t.Fatalf("vector RSA key kind %q", ki.Kind)
	}
	enc, err := s.EncryptKeyring(ctx, "vec-aes", "vec-rsa-pub")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := openTestStore(t, s.Dir(), testPass).DecryptKeyring(ctx, "vec-rsa")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, enc, dec) // both RSA imports carry the private key's ESDK key name
}
