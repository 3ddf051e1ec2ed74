package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

var reloadEC = map[string]string{"app": "reload"}

func sealUnder(t *testing.T, kr envelope.Keyring) []byte {
	t.Helper()
	msg, err := envelope.EncryptBytes(context.Background(), []byte("new version"), kr, envelope.EncryptOptions{Context: reloadEC})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func openUnder(kr envelope.Keyring, msg []byte) error {
	pt, _, err := envelope.DecryptBytes(context.Background(), msg, kr, envelope.DecryptOptions{Context: reloadEC})
	if err == nil && string(pt) != "new version" {
		err = errors.New("wrong plaintext")
	}
	return err
}

func encryptKeyring(t *testing.T, s *Store, name string) envelope.Keyring {
	t.Helper()
	kr, err := s.EncryptKeyring(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func decryptKeyringOf(t *testing.T, s *Store, keys ...string) *reloadingKeyring {
	t.Helper()
	kr, err := s.DecryptKeyring(context.Background(), keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr.(*reloadingKeyring)
}

// TestDecryptKeyringFollowsRotation is issue 11 item 9: a keyring made by
// one Store before another Store rotates the key decrypts messages under
// the new version, in the every-key and the named form; a key created
// since is found by the every-key form only.
func TestDecryptKeyringFollowsRotation(t *testing.T) {
	ctx := context.Background()
	a := newTestStore(t)
	mustCreate(t, a, "k")
	old := sealUnder(t, encryptKeyring(t, a, "k"))
	every, named := decryptKeyringOf(t, a), decryptKeyringOf(t, a, "k")

	b := openTestStore(t, a.Dir(), testPass)
	if _, err := b.RotateKey(ctx, "k", "elsewhere"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "later")
	fresh, other := sealUnder(t, encryptKeyring(t, b, "k")), sealUnder(t, encryptKeyring(t, b, "later"))
	for name, kr := range map[string]envelope.Keyring{"every key": every, "named": named} {
		for what, msg := range map[string][]byte{"old": old, "new": fresh} {
			if err := openUnder(kr, msg); err != nil {
				t.Errorf("%s keyring, %s version: %v", name, what, err)
			}
		}
	}
	if err := openUnder(every, other); err != nil {
		t.Errorf("every-key keyring, key created since: %v", err)
	}
	if err := openUnder(named, other); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Errorf("keyring of k decrypted a message of another key: %v", err)
	}
}

// TestDecryptKeyringReloadsOncePerChange: EDKs naming versions that exist
// nowhere make no reload while keystore.json is unchanged, and one per
// change; a version that is merely disabled is no reason to reload.
func TestDecryptKeyringReloadsOncePerChange(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	forged, err := keyring.NewRawAES(keyring.ProviderLocal, keyring.VersionedKeyName("k", 99), key)
	if err != nil {
		t.Fatal(err)
	}
	bogus := sealUnder(t, forged)
	kr := decryptKeyringOf(t, s)
	first := kr.kr
	for range 3 {
		if err := openUnder(kr, bogus); !errors.Is(err, envelope.ErrNoDecryptKey) {
			t.Fatalf("forged version: %v", err)
		}
	}
	if kr.kr != first {
		t.Fatal("reloaded although keystore.json did not change")
	}
	if _, err := s.CreateKey(ctx, "other", CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := openUnder(kr, bogus); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("forged version: %v", err)
	}
	second := kr.kr
	if second == first {
		t.Fatal("no reload after keystore.json changed")
	}
	for range 3 {
		_ = openUnder(kr, bogus)
	}
	if kr.kr != second {
		t.Fatal("reloaded twice for one change")
	}
	if !kr.known.unknown(envelope.EncryptedDataKey{ProviderID: keyring.ProviderLocal, ProviderInfo: []byte("k/v2")}) ||
		kr.known.unknown(envelope.EncryptedDataKey{ProviderID: keyring.ProviderLocal, ProviderInfo: []byte("k/v1")}) {
		t.Fatal("known versions: k/v2 must be unknown, k/v1 known")
	}
}

// TestRewrapKeyringReloadsAsRewrap: a reload keeps RewrapKeyrings' gates
// authorizing keystack:ReWrap, not keystack:Decrypt.
func TestRewrapKeyringReloadsAsRewrap(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	dec, _, err := s.RewrapKeyrings(ctx, nil, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if err := openUnder(dec, sealUnder(t, encryptKeyring(t, s, "k"))); err != nil {
		t.Fatal(err)
	}
	r := dec.(*reloadingKeyring)
	for _, kr := range r.kr.(*keyring.Multi).Keyrings() {
		if k, ok := s.enf.KeyOf(kr); !ok || !k.Rewrap {
			t.Fatalf("reloaded rewrap keyring gates %T %+v", kr, kr)
		}
	}
}

// TestDecryptKeyringFollowsExternalRotation: a pkcs11 key moved to a new
// token object by another Store is found by an older keyring, through the
// object label its EDKs carry.
func TestDecryptKeyringFollowsExternalRotation(t *testing.T) {
	ctx := context.Background()
	uri1, uri2 := "pkcs11:token=t;object=e", "pkcs11:token=t;object=e%2Fv2"
	mk := func(label string) envelope.Keyring {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			t.Fatal(err)
		}
		kr, err := keyring.NewRawAES(keyring.ProviderPKCS11, label, key)
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	hsm := fakeBackend{keys: map[string]envelope.Keyring{uri1: mk("e"), uri2: mk("e/v2")}}
	a := newTestStore(t)
	a.backends = map[string]Backend{BackendPKCS11: hsm}
	if _, err := a.CreateKey(ctx, "ext", CreateKeyOptions{Backend: BackendPKCS11, Ref: uri1}); err != nil {
		t.Fatal(err)
	}
	dec := decryptKeyringOf(t, a, "ext")
	if dec.known.unknown(envelope.EncryptedDataKey{ProviderID: keyring.ProviderPKCS11, ProviderInfo: []byte("e")}) {
		t.Fatal("the label of v1 counts as unknown")
	}
	b := openTestStore(t, a.Dir(), testPass)
	b.backends = a.backends
	if _, err := b.RotateKeyTo(ctx, "ext", uri2, ""); err != nil {
		t.Fatal(err)
	}
	if err := openUnder(dec, sealUnder(t, encryptKeyring(t, b, "ext"))); err != nil {
		t.Fatal(err)
	}
}

// TestDecryptKeyringReloadConcurrently: goroutines missing on the same new
// version at once all decrypt, and the keyring reloads once (run with
// -race).
func TestDecryptKeyringReloadConcurrently(t *testing.T) {
	s := newTestStore(t)
	mustCreate(t, s, "k")
	kr := decryptKeyringOf(t, s)
	first := kr.kr
	if _, err := s.RotateKey(context.Background(), "k", ""); err != nil {
		t.Fatal(err)
	}
	msg := sealUnder(t, encryptKeyring(t, s, "k"))
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() { errs <- openUnder(kr, msg) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	second, _, _ := kr.current()
	if second == first {
		t.Fatal("no reload")
	}
	if err := openUnder(kr, msg); err != nil || kr.kr != second {
		t.Fatalf("a later message reloaded again or failed: %v", err)
	}
}
