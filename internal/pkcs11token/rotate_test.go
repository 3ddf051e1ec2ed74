package pkcs11token

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// hsmStore is an insecure keystore on a movable clock with this package's
// Backend registered for pkcs11 keys.
func hsmStore(t *testing.T, b *Backend, now *time.Time) *keystore.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	if _, err := keystore.Init(dir, keystore.InitOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	s, err := keystore.Open(dir, keystore.OpenOptions{Now: func() time.Time { return *now },
		Backends: map[string]keystore.Backend{keystore.BackendPKCS11: b}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeWithHSMKey generates AES keys labeled objs on the main test token
// and returns the token, a Backend, and an insecure store on a movable
// clock (from 2026-03-01) in which key name's version 1 is ref.
func storeWithHSMKey(t *testing.T, objs []string, name, ref string) (*Token, *Backend, *keystore.Store, *time.Time) {
	t.Helper()
	requireSoftHSM(t)
	ctx := context.Background()
	tok := openToken(t, tokenMain, Options{})
	for _, l := range objs {
		if err := tok.GenerateAESKey(ctx, l, nil); err != nil {
			t.Fatal(err)
		}
	}
	b := NewBackend(Options{Prompt: pinPrompt(testPIN)})
	t.Cleanup(func() { _ = b.Close() })
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	s := hsmStore(t, b, &now)
	if _, err := s.CreateKey(ctx, name, keystore.CreateKeyOptions{Backend: keystore.BackendPKCS11, Ref: ref}); err != nil {
		t.Fatal(err)
	}
	return tok, b, s, &now
}

func labels(t *testing.T, tok *Token) []string {
	t.Helper()
	objs, err := tok.ListObjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Label)
	}
	return out
}

func sealMsg(t *testing.T, s *keystore.Store, name string) []byte {
	t.Helper()
	ctx := context.Background()
	kr, err := s.EncryptKeyring(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := envelope.EncryptBytes(ctx, []byte("hsm rotation"), kr, envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func openMsg(s *keystore.Store, name string, msg []byte) (*envelope.Header, error) {
	ctx := context.Background()
	kr, err := s.DecryptKeyring(ctx, name)
	if err != nil {
		return nil, err
	}
	pt, h, err := envelope.DecryptBytes(ctx, msg, kr, envelope.DecryptOptions{})
	if err == nil && string(pt) != "hsm rotation" {
		err = errors.New("wrong plaintext")
	}
	return h, err
}

// TestStoreRotatesHSMVersions rotates a pkcs11 store key on SoftHSM2: each
// version is its own token object, the old one decrypts until it is
// destroyed, and destruction removes the object from the token.
func TestStoreRotatesHSMVersions(t *testing.T) {
	ctx := context.Background()
	ref1 := "pkcs11:token=T;object=rot%2Fv1;type=secret-key?module-path=" + softhsmModule
	tok, b, s, now := storeWithHSMKey(t, []string{"rot/v1"}, "rot", ref1)
	old := sealMsg(t, s, "rot")

	ki, err := s.RotateKey(ctx, "rot", "scheduled")
	if err != nil {
		t.Fatal(err)
	}
	v2 := ki.Versions[1]
	if ki.Primary != 2 || ki.Versions[0].State != keystore.StateDecryptOnly || !strings.Contains(v2.Ref, "object=rot%2Fv2") ||
		!strings.Contains(v2.Ref, "module-path=") || v2.Ref == ref1 {
		t.Fatalf("after rotation: %+v", ki)
	}
	if !slices.Contains(labels(t, tok), "rot/v2") {
		t.Fatalf("no rot/v2 object on the token: %v", labels(t, tok))
	}
	fresh := sealMsg(t, s, "rot")
	h, err := openMsg(s, "rot", fresh)
	if err != nil {
		t.Fatal(err)
	}
	if d := keyring.DescribeEDK(h.EncryptedDataKeys[0]); d.Key != "rot" || d.Version != 2 || d.ProviderID != keyring.ProviderPKCS11 {
		t.Fatalf("new message's EDK: %+v", d)
	}
	if _, err := openMsg(s, "rot", old); err != nil {
		t.Fatalf("v1 message after rotation: %v", err)
	}

	if _, err := s.ScheduleVersionDestruction(ctx, "rot", 1, keystore.DefaultMinDestructionWait, "retire"); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(keystore.DefaultMinDestructionWait)
	got, err := s.DestroyDueVersions(ctx)
	if err != nil || len(got) != 1 || got[0].Version != 1 {
		t.Fatalf("DestroyDueVersions: %+v, %v", got, err)
	}
	if l := labels(t, tok); slices.Contains(l, "rot/v1") || !slices.Contains(l, "rot/v2") {
		t.Fatalf("token objects after destruction: %v", l)
	}
	if _, err := openMsg(s, "rot", old); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("v1 message after destruction: %v", err)
	}
	if _, err := openMsg(s, "rot", fresh); err != nil {
		t.Fatalf("v2 message after destroying v1: %v", err)
	}
	// Destroying an object already gone is not an error (crash retry).
	if err := b.DestroyVersion(ctx, ref1); err != nil {
		t.Fatalf("DestroyVersion of a gone object: %v", err)
	}
}

// TestStoreHSMRotationLabelTaken leaves the store unchanged when the next
// version's label is already on the token.
func TestStoreHSMRotationLabelTaken(t *testing.T) {
	ctx := context.Background()
	ref := "pkcs11:token=T;object=taken%2Fv1?module-path=" + softhsmModule
	_, _, s, _ := storeWithHSMKey(t, []string{"taken/v1", "taken/v2"}, "taken", ref)
	if _, err := s.RotateKey(ctx, "taken", ""); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("RotateKey onto a taken label: %v, want ErrKeyExists", err)
	}
	ki, err := s.DescribeKey(ctx, "taken")
	if err != nil || ki.Primary != 1 || len(ki.Versions) != 1 {
		t.Fatalf("failed rotation changed the store: %+v, %v", ki, err)
	}
}

func TestBaseLabel(t *testing.T) {
	for in, want := range map[string]string{"k/v1": "k", "k/v12": "k", "k": "k", "k/v0": "k/v0", "k/v01": "k/v01",
		"/v2": "/v2", "a/b/v3": "a/b", "k/vx": "k/vx"} {
		if got := baseLabel(in); got != want {
			t.Errorf("baseLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
