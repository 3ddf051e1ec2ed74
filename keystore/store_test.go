package keystore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

const testPass = "correct horse battery staple"

func TestMain(m *testing.M) {
	// Cheap KDF costs keep the tests fast; the defaults are exercised by
	// BenchmarkUnlockDefaultKDF.
	defaultArgon2.Time, defaultArgon2.MemoryKiB, defaultArgon2.Threads = 1, 64, 1
	defaultScrypt.LogN = 4
	if os.Getenv(helperEnv) != "" {
		os.Exit(runWriterHelper())
	}
	if os.Getenv(passChangeEnv) != "" {
		os.Exit(runPassChangeHelper())
	}
	if os.Getenv(sealChangeEnv) != "" {
		os.Exit(runSealChangeHelper())
	}
	os.Exit(m.Run())
}

func fixedNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

func newTestStore(t *testing.T) *Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	if _, err := Init(dir, InitOptions{Passphrase: []byte(testPass)}); err != nil {
		t.Fatal(err)
	}
	return openTestStore(t, dir, testPass)
}

func openTestStore(t *testing.T, dir, pass string) *Store {
	t.Helper()
	s, err := Open(dir, OpenOptions{Now: fixedNow, Passphrase: func() ([]byte, error) { return []byte(pass), nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCreate(t *testing.T, s *Store, name string) *KeyInfo {
	t.Helper()
	ki, err := s.CreateKey(context.Background(), name, CreateKeyOptions{Description: "test key " + name})
	if err != nil {
		t.Fatal(err)
	}
	return ki
}

// roundTrip encrypts under enc and decrypts with dec; it returns the EDKs.
func roundTrip(t *testing.T, enc, dec envelope.Keyring) []envelope.EncryptedDataKey {
	t.Helper()
	ctx := context.Background()
	ec := map[string]string{"app": "store-test"}
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ec, PlaintextLength: -1}
	if err := enc.OnEncrypt(ctx, m); err != nil {
		t.Fatal(err)
	}
	d := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ec}
	if err := dec.OnDecrypt(ctx, d, m.EncryptedDataKeys); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.DataKey, m.DataKey) {
		t.Fatal("decrypted data key differs")
	}
	return m.EncryptedDataKeys
}

func TestInitOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "ks")
	if _, err := Open(dir, OpenOptions{}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Open before Init: %v, want ErrNotInitialized", err)
	}
	s, err := Init(dir, InitOptions{Passphrase: []byte(testPass)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir() != dir {
		t.Fatalf("Dir() = %q", s.Dir())
	}
	mustCreate(t, s, "from-init") // Init's store needs no second passphrase
	if _, err := Init(dir, InitOptions{Passphrase: []byte("other")}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, metaFile): 0o600, filepath.Join(dir, lockFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", filepath.Base(path), got, want)
		}
	}
	if _, err := openTestStore(t, dir, testPass).DescribeKey(context.Background(), "from-init"); err != nil {
		t.Fatal(err)
	}
}

func TestInitOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		opts InitOptions
		want error
	}{
		{InitOptions{}, ErrBadPassphrase},
		{InitOptions{Insecure: true, Passphrase: []byte("x")}, ErrInvalidOptions},
		{InitOptions{Passphrase: []byte("x"), KDF: "md5"}, ErrInvalidOptions},
		{InitOptions{Insecure: true, KDF: "scrypt"}, ErrInvalidOptions},
	}
	for i, c := range cases {
		if _, err := Init(filepath.Join(dir, string(rune('a'+i))), c.opts); !errors.Is(err, c.want) {
			t.Errorf("case %d: Init error %v, want %v", i, err, c.want)
		}
	}
}

func TestCreateListDescribe(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ki := mustCreate(t, s, "beta")
	if ki.Backend != BackendLocal || ki.Kind != "aes-256" || ki.Primary != 1 || len(ki.Versions) != 1 ||
		ki.Versions[0].State != StateEnabled || !ki.Created.Equal(fixedNow()) || ki.Description != "test key beta" {
		t.Fatalf("CreateKey returned %+v", ki)
	}
	mustCreate(t, s, "alpha")
	arn := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	if _, err := s.CreateKey(ctx, "kms", CreateKeyOptions{Backend: BackendAWSKMS, Ref: arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateKey(ctx, "alpha", CreateKeyOptions{}); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("duplicate CreateKey: %v, want ErrKeyExists", err)
	}
	keys, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	if strings.Join(names, ",") != "alpha,beta,kms" {
		t.Fatalf("ListKeys names = %v", names)
	}
	got, err := s.DescribeKey(ctx, "kms")
	if err != nil || got.Kind != BackendAWSKMS || got.Versions[0].Ref != arn {
		t.Fatalf("DescribeKey(kms) = %+v, %v", got, err)
	}
	if _, err := s.DescribeKey(ctx, "nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("DescribeKey(nope): %v, want ErrKeyNotFound", err)
	}
}

func TestCreateKeyErrors(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	for _, name := range []string{"", "../x", "a/b", ".hidden", "-x", "a:b", "a b", "a\x00b", strings.Repeat("k", 129)} {
		if _, err := s.CreateKey(ctx, name, CreateKeyOptions{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CreateKey(%q): %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := s.CreateKey(ctx, strings.Repeat("k", 128), CreateKeyOptions{}); err != nil {
		t.Errorf("128-character name refused: %v", err)
	}
	cases := map[string]struct {
		opts CreateKeyOptions
		want error
	}{
		"unknown backend": {CreateKeyOptions{Backend: "vault", Ref: "x"}, ErrBackendUnavailable},
		"missing ref":     {CreateKeyOptions{Backend: BackendAWSKMS}, ErrInvalidOptions},
		"local with ref":  {CreateKeyOptions{Ref: "arn:aws:kms:x"}, ErrInvalidOptions},
		"pin in uri":      {CreateKeyOptions{Backend: BackendPKCS11, Ref: "pkcs11:token=t;object=k?pin-value=1234"}, ErrInvalidOptions},
		"vendor in path":  {CreateKeyOptions{Backend: BackendPKCS11, Ref: "pkcs11:token=t;x-secret=1234;object=k"}, ErrInvalidOptions},
		"vendor in query": {CreateKeyOptions{Backend: BackendPKCS11, Ref: "pkcs11:token=t;object=k?module-path=/m.so&X-Pass=1234"}, ErrInvalidOptions},
	}
	for what, c := range cases {
		_, err := s.CreateKey(ctx, "k", c.opts)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", what, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "1234") {
			t.Errorf("%s: error reveals the PIN: %v", what, err)
		}
	}
}

func TestEncryptDecryptAfterReopen(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "app")
	mustCreate(t, s, "backup")
	enc, err := s.EncryptKeyring(ctx, "app", "backup")
	if err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t, s.Dir(), testPass)
	for _, keys := range [][]string{{"app"}, {"backup"}, nil} {
		dec, err := s2.DecryptKeyring(ctx, keys...)
		if err != nil {
			t.Fatal(err)
		}
		edks := roundTrip(t, enc, dec)
		if len(edks) != 2 || edks[0].ProviderID != keyring.ProviderLocal || keyring.DescribeEDK(edks[0]).KeyName != "app/v1" ||
			keyring.DescribeEDK(edks[1]).KeyName != "backup/v1" {
			t.Fatalf("EDKs %+v, want keystack app/v1 and backup/v1", edks)
		}
	}
	if _, err := s2.EncryptKeyring(ctx, "missing"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("EncryptKeyring(missing): %v", err)
	}
	if _, err := s2.EncryptKeyring(ctx); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("EncryptKeyring(): %v", err)
	}
}

func TestPassphrase(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	calls := 0
	good, err := Open(s.Dir(), OpenOptions{Passphrase: func() ([]byte, error) { calls++; return []byte(testPass), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := good.ListKeys(ctx); err != nil || calls != 0 {
		t.Fatalf("ListKeys: %v, passphrase asked %d times, want 0", err, calls)
	}
	for range 2 {
		if _, err := good.EncryptKeyring(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("passphrase asked %d times, want once", calls)
	}
	wrong := openTestStore(t, s.Dir(), "wrong horse")
	_, err = wrong.EncryptKeyring(ctx, "k")
	if !errors.Is(err, ErrBadPassphrase) || strings.Contains(err.Error(), "wrong horse") {
		t.Fatalf("wrong passphrase: %v, want opaque ErrBadPassphrase", err)
	}
	if _, err := wrong.CreateKey(ctx, "k2", CreateKeyOptions{}); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("CreateKey with wrong passphrase: %v", err)
	}
	locked, _ := Open(s.Dir(), OpenOptions{})
	if _, err := locked.DecryptKeyring(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("no passphrase source: %v, want ErrLocked", err)
	}
}

func TestInsecureStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Init(dir, InitOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "k")
	s2, err := Open(dir, OpenOptions{}) // no passphrase source needed
	if err != nil {
		t.Fatal(err)
	}
	enc, err := s2.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := s2.DecryptKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, enc, dec)
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil || !bytes.Contains(data, []byte(`"insecure": true`)) || bytes.Contains(data, []byte(`"kdf"`)) {
		t.Fatalf("insecure store file not marked insecure: %v\n%s", err, data)
	}
}

func TestScryptStore(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, InitOptions{Passphrase: []byte(testPass), KDF: KDFScrypt}); err != nil {
		t.Fatal(err)
	}
	s := openTestStore(t, dir, testPass)
	mustCreate(t, s, "k")
	enc, err := s.EncryptKeyring(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := openTestStore(t, dir, testPass).DecryptKeyring(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, enc, dec)
	if _, err := openTestStore(t, dir, "nope").DecryptKeyring(context.Background()); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("wrong scrypt passphrase: %v", err)
	}
}

func TestInitTightensExistingDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, InitOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("store dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

// TestMaterialSealedAtRest imports a known key and looks for it in
// keystore.json: absent from a sealed store, present in an insecure one.
func TestMaterialSealedAtRest(t *testing.T) {
	key := bytes.Repeat([]byte{0x5A, 0xC3}, 16)
	for _, insecure := range []bool{false, true} {
		dir := t.TempDir()
		opts := InitOptions{Insecure: insecure}
		if !insecure {
			opts.Passphrase = []byte(testPass)
		}
		s, err := Init(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ImportKey(context.Background(), "k", ImportKeyOptions{AESKey: key}); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, metaFile))
		if err != nil {
			t.Fatal(err)
		}
		found := bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(key)))
		if found != insecure {
			t.Fatalf("insecure=%v: key material in clear in keystore.json = %v", insecure, found)
		}
	}
}

// checkName is the grammar [A-Za-z0-9][A-Za-z0-9._-]{0,127}, written out.
func TestCheckNameMatchesGrammar(t *testing.T) {
	grammar := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	alphabet := []string{"a", "Z", "0", "9", ".", "_", "-", "/", ":", " ", "é", "\x00", "\xff"}
	var names []string
	for _, a := range alphabet {
		for _, b := range alphabet {
			names = append(names, a, a+b, a+b+a, "k"+a+b)
		}
	}
	names = append(names, "", strings.Repeat("k", 127), strings.Repeat("k", 128), strings.Repeat("k", 129))
	for _, n := range names {
		if got, want := checkName(n) == nil, grammar.MatchString(n); got != want {
			t.Errorf("checkName(%q) accepts: %v, grammar: %v", n, got, want)
		}
	}
}
