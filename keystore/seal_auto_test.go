package keystore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// rawSealBackend is a Backend of raw AES keys derived from their
// reference ("pkcs11:…;object=NAME" or an ARN): a real keyring standing
// in for a token in unit tests (the CLI tests use SoftHSM2 and the KMS
// wire protocol). "down" refuses every keyring, as a missing token does.
type rawSealBackend struct{ down bool }

var errTestDown = errors.New("test backend down")

func (b rawSealBackend) Keyring(_ context.Context, ref string) (envelope.Keyring, error) {
	if b.down {
		return nil, errTestDown
	}
	k := sha256.Sum256([]byte(ref))
	return keyring.NewRawAES("test-seal", ref, k[:])
}

const (
	sealRefA = "pkcs11:token=T;object=sealA"
	sealRefB = "pkcs11:token=T;object=sealB"
)

func openSealStore(t *testing.T, dir string, b Backend, pass string) *Store {
	t.Helper()
	opts := OpenOptions{Now: fixedNow, Backends: map[string]Backend{BackendPKCS11: b}}
	if pass != "" {
		opts.Passphrase = func() ([]byte, error) { return []byte(pass), nil }
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSetSealRoundTrip: passphrase → PKCS#11 key → another key →
// passphrase. After each change the store opens with the new seal alone,
// every key and credential still works, and the old seal opens nothing.
func TestSetSealRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	cred, err := s.CreateCredential(ctx, "service:app")
	if err != nil {
		t.Fatal(err)
	}
	s.backends = map[string]Backend{BackendPKCS11: rawSealBackend{}}
	for i, opts := range []SealOptions{{Kind: BackendPKCS11, Ref: sealRefA}, {Kind: BackendPKCS11, Ref: sealRefB},
		{Kind: SealPassphrase, Passphrase: []byte("new pass")}} {
		if err := s.SetSeal(ctx, opts); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		pass := ""
		if opts.Kind == SealPassphrase {
			pass = "new pass"
		}
		fresh := openSealStore(t, s.Dir(), rawSealBackend{}, pass)
		info, err := fresh.SealInfo()
		if err != nil || info.Kind != opts.Kind || info.Ref != opts.Ref {
			t.Fatalf("change %d: SealInfo %+v, %v", i, info, err)
		}
		if _, err := fresh.EncryptKeyring(ctx, "k"); err != nil {
			t.Fatalf("change %d: key unusable: %v", i, err)
		}
		if got, err := ops(fresh).LookupCredential(context.Background(), cred.AccessKeyID); err != nil || got.Secret != cred.Secret {
			t.Fatalf("change %d: credential: %v", i, err)
		}
	}
	old := openSealStore(t, s.Dir(), rawSealBackend{}, testPass)
	if _, err := old.EncryptKeyring(ctx, "k"); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("old passphrase: got %v, want ErrBadPassphrase", err)
	}
}

// TestAutoUnsealFailures: each way an auto-unseal fails has its error,
// and none unlocks the store.
func TestAutoUnsealFailures(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	s.backends = map[string]Backend{BackendPKCS11: rawSealBackend{}}
	if err := s.SetSeal(ctx, SealOptions{Kind: BackendPKCS11, Ref: sealRefA}); err != nil {
		t.Fatal(err)
	}
	down := openSealStore(t, s.Dir(), rawSealBackend{down: true}, "")
	if err := down.Unlock(); !errors.Is(err, ErrAutoUnseal) || !errors.Is(err, errTestDown) {
		t.Errorf("backend down: got %v, want ErrAutoUnseal and the backend's error", err)
	}
	none, err := Open(s.Dir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if err := none.Unlock(); !errors.Is(err, ErrAutoUnseal) || !errors.Is(err, ErrBackendUnavailable) {
		t.Errorf("no backend registered: got %v", err)
	}
	// A seal record naming another key than the one that wrapped.
	f, rev, err := s.loadRev(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	f.Seal.Ref = sealRefB
	if _, err := s.writeState(ctx, f, rev); err != nil {
		t.Fatal(err)
	}
	wrong := openSealStore(t, s.Dir(), rawSealBackend{}, "")
	if err := wrong.Unlock(); !errors.Is(err, ErrAutoUnseal) {
		t.Errorf("wrong master key: got %v, want ErrAutoUnseal", err)
	}
	if err := s.ChangePassphrase(ctx, []byte("x")); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("passphrase change of an auto-unsealed store: got %v", err)
	}
}

// TestSetSealRefusals: bad options change nothing.
func TestSetSealRefusals(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	s.backends = map[string]Backend{BackendPKCS11: rawSealBackend{}}
	before, _ := os.ReadFile(filepath.Join(s.Dir(), metaFile))
	for name, opts := range map[string]SealOptions{
		"pin in uri":        {Kind: BackendPKCS11, Ref: sealRefA + "?pin-value=1234"},
		"no ref":            {Kind: BackendPKCS11},
		"unknown kind":      {Kind: "vault", Ref: "x"},
		"passphrase + ref":  {Kind: SealPassphrase, Ref: sealRefA, Passphrase: []byte("p")},
		"empty passphrase":  {Kind: SealPassphrase},
		"auto + passphrase": {Kind: BackendPKCS11, Ref: sealRefA, Passphrase: []byte("p")},
	} {
		if err := s.SetSeal(ctx, opts); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: got %v, want ErrInvalidOptions", name, err)
		}
	}
	s.backends[BackendPKCS11] = rawSealBackend{down: true}
	if err := s.SetSeal(ctx, SealOptions{Kind: BackendPKCS11, Ref: sealRefA}); !errors.Is(err, errTestDown) {
		t.Errorf("backend down: got %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(s.Dir(), metaFile))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused seal change rewrote keystore.json")
	}
}

// TestRereadPassphrase: a process that unlocked before a passphrase
// change unlocks again from a source that now gives the new passphrase;
// one that gives the old one fails with errResealed, and derives a key
// (audits a failed unlock) once, not per request.
func TestRereadPassphrase(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	cur, calls := testPass, 0
	srv, err := Open(s.Dir(), OpenOptions{Now: fixedNow, RereadPassphrase: true,
		Passphrase: func() ([]byte, error) { calls++; return []byte(cur), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := s.ChangePassphrase(ctx, []byte("second")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := srv.EncryptKeyring(ctx, "k"); !errors.Is(err, errResealed) {
			t.Fatalf("old passphrase in the source: got %v, want errResealed", err)
		}
	}
	if calls != 4 {
		t.Fatalf("source asked %d times, want 4 (start, once a request after the change)", calls)
	}
	if err := s.ChangePassphrase(ctx, []byte("third")); err != nil {
		t.Fatal(err)
	}
	cur = "third"
	if _, err := srv.EncryptKeyring(ctx, "k"); err != nil {
		t.Fatalf("updated source: %v", err)
	}
}

// sealChangeEnv makes the test binary change a store's seal (see
// TestMain): dir, then "pkcs11:REF" or "pass:PASSPHRASE" for the current
// seal and the new one, one a line.
const sealChangeEnv = "KEYSTACK_TEST_SEALCHANGE"

func runSealChangeHelper() int {
	f := strings.Split(os.Getenv(sealChangeEnv), "\n")
	opts := OpenOptions{Backends: map[string]Backend{BackendPKCS11: rawSealBackend{}}}
	if p, ok := strings.CutPrefix(f[1], "pass:"); ok {
		opts.Passphrase = func() ([]byte, error) { return []byte(p), nil }
	}
	s, err := Open(f[0], opts)
	if err == nil {
		err = s.SetSeal(context.Background(), sealOptionsOf(f[2]))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func sealOptionsOf(seal string) SealOptions {
	if p, ok := strings.CutPrefix(seal, "pass:"); ok {
		return SealOptions{Kind: SealPassphrase, Passphrase: []byte(p)}
	}
	return SealOptions{Kind: BackendPKCS11, Ref: strings.TrimPrefix(seal, "pkcs11:")}
}

// TestSetSealKill9: a process changing the seal (passphrase → token key →
// other token key → passphrase …) is killed with SIGKILL at random points.
// After each kill exactly one of the two seals opens the store, and every
// key version unseals under it.
func TestSetSealKill9(t *testing.T) {
	t.Parallel() // a store of its own; 25 helper processes killed mid-way
	s := newTestStore(t)
	for i := range 120 {
		mustCreate(t, s, fmt.Sprintf("k%03d", i))
	}
	seals := []string{"pass:" + testPass, "pkcs11:" + sealRefA, "pkcs11:" + sealRefB, "pass:other"}
	dir, cur := s.Dir(), 0
	start := time.Now()
	if err := sealChangeCmd(dir, seals[0], seals[1]).Run(); err != nil {
		t.Fatal(err)
	}
	took, cur := time.Since(start), 1
	killDuring(t, took, func() *exec.Cmd {
		return sealChangeCmd(dir, seals[cur], seals[(cur+1)%len(seals)])
	}, func() {
		if next := (cur + 1) % len(seals); checkOneOfSeals(t, dir, seals[cur], seals[next]) {
			cur = next
		}
	})
}

func sealChangeCmd(dir, from, to string) *exec.Cmd { return helperCmd(sealChangeEnv, dir, from, to) }

// checkOneOfSeals reports whether the store is under seal b (else it must
// be under a), after unsealing every key version under it.
func checkOneOfSeals(t *testing.T, dir, a, b string) bool {
	t.Helper()
	var ok []bool
	var kek []byte
	for _, seal := range []string{a, b} {
		opts := OpenOptions{Backends: map[string]Backend{BackendPKCS11: rawSealBackend{}}}
		if p, isPass := strings.CutPrefix(seal, "pass:"); isPass {
			opts.Passphrase = func() ([]byte, error) { return []byte(p), nil }
		}
		st, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("store unreadable after a kill: %v", err)
		}
		f, err := st.load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		k, err := st.unlockKEK(f)
		st.Close()
		ref, isToken := strings.CutPrefix(seal, "pkcs11:")
		if err == nil && (isToken == (f.Seal != nil)) && (!isToken || f.Seal.Ref == ref) {
			ok, kek = append(ok, true), k
			for name, key := range f.Keys {
				for _, v := range key.Versions {
					if _, err := unseal(kek, v.Material, materialAAD(name, v.Version)); err != nil {
						t.Fatalf("key %s v%d does not unseal under the store's seal: a mix of seals", name, v.Version)
					}
				}
			}
		} else {
			ok = append(ok, false)
		}
	}
	if ok[0] == ok[1] {
		t.Fatalf("seals %q and %q: opened %v, want exactly one", a, b, ok)
	}
	return ok[1]
}

// TestUsesBackend: a key of the backend, or an auto-unseal by it, makes a
// store use it; another backend's key or seal does not, and asking asks
// for no passphrase.
func TestUsesBackend(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "local")
	s.backends = map[string]Backend{BackendPKCS11: rawSealBackend{}}
	if err := s.SetSeal(ctx, SealOptions{Kind: BackendPKCS11, Ref: sealRefA}); err != nil {
		t.Fatal(err)
	}
	uses := func(backend string) bool {
		t.Helper()
		fresh, err := Open(s.Dir(), OpenOptions{Passphrase: func() ([]byte, error) {
			t.Fatal("UsesBackend asked for the passphrase")
			return nil, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		ok, err := fresh.UsesBackend(backend)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if uses(BackendAWSKMS) || !uses(BackendPKCS11) {
		t.Fatal("a pkcs11-sealed store of local keys: want pkcs11 used, aws-kms not")
	}
	arn := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	if _, err := s.CreateKey(ctx, "kms", CreateKeyOptions{Backend: BackendAWSKMS, Ref: arn}); err != nil {
		t.Fatal(err)
	}
	if !uses(BackendAWSKMS) {
		t.Fatal("a store listing an aws-kms key: UsesBackend(aws-kms) = false")
	}
}
