package keystore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keystack/keystack/gate"
)

// TestChangePassphrase: after the change only the new passphrase opens
// the store, and every key (several versions) still unwraps
// what it wrapped before; the change is audited.
func TestChangePassphrase(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "aes")
	if _, err := s.RotateKey(ctx, "aes", "test"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "aes2")
	enc, err := s.EncryptKeyring(ctx, "aes", "aes2")
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	if err := s.ChangePassphrase(ctx, []byte("new passphrase")); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "after") // the open store goes on with the new key
	old := openTestStore(t, dir, testPass)
	if _, err := old.DecryptKeyring(ctx, "aes"); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("old passphrase after the change: %v, want ErrBadPassphrase", err)
	}
	s2 := openTestStore(t, dir, "new passphrase")
	for _, name := range []string{"aes", "aes2", "after"} {
		dec, err := s2.DecryptKeyring(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if name != "after" {
			roundTrip(t, enc, dec)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	if err != nil || !strings.Contains(string(data), actionChangePassphrase) {
		t.Fatalf("audit log lacks the change (%v)", err)
	}
}

// TestChangePassphraseCredentials: the key server's access key secrets
// are resealed too; before, they opened under neither passphrase.
func TestChangePassphraseCredentials(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	c, err := s.CreateCredential(ctx, "service:billing")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ChangePassphrase(ctx, []byte("new passphrase")); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t, s.Dir(), "new passphrase")
	got, err := ops(s2).LookupCredential(context.Background(), c.AccessKeyID)
	if err != nil || got.Secret != c.Secret || got.Principal != "service:billing" {
		t.Fatalf("credential after the change: %+v, %v", got, err)
	}
}

// TestChangePassphraseRefusals: a wrong current passphrase, an empty new
// one and an unsealed store change nothing.
func TestChangePassphraseRefusals(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	before, _ := os.ReadFile(filepath.Join(s.Dir(), metaFile))
	wrong := openTestStore(t, s.Dir(), "wrong")
	if err := wrong.ChangePassphrase(ctx, []byte("x")); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("wrong current passphrase: %v", err)
	}
	if err := s.ChangePassphrase(ctx, nil); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("empty new passphrase: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(s.Dir(), metaFile))
	if string(before) != string(after) {
		t.Fatal("a refused change rewrote keystore.json")
	}
	dir := filepath.Join(t.TempDir(), "insecure")
	in, err := Init(dir, InitOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.ChangePassphrase(ctx, []byte("x")); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("unsealed store: %v", err)
	}
}

// TestPassphraseTries: a source that is wrong twice and then right
// unlocks with three tries, and is asked only once without.
func TestPassphraseTries(t *testing.T) {
	s := newTestStore(t)
	mustCreate(t, s, "k")
	for _, tc := range []struct{ tries, wantCalls int }{{3, 3}, {0, 1}, {2, 2}} {
		calls := 0
		src := func() ([]byte, error) {
			calls++
			if calls < 3 {
				return []byte("wrong"), nil
			}
			return []byte(testPass), nil
		}
		st, err := Open(s.Dir(), OpenOptions{Passphrase: src, PassphraseTries: tc.tries})
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.DecryptKeyring(context.Background(), "k")
		if calls != tc.wantCalls || (tc.tries >= 3) != (err == nil) {
			t.Errorf("tries %d: %d calls, err %v", tc.tries, calls, err)
		}
		st.Close()
	}
}

// passChangeEnv makes the test binary change a store's passphrase (see
// TestMain): KEYSTACK_TEST_PASSCHANGE is dir, old and new, one a line.
const passChangeEnv = "KEYSTACK_TEST_PASSCHANGE"

func runPassChangeHelper() int {
	f := strings.Split(os.Getenv(passChangeEnv), "\n")
	s, err := Open(f[0], OpenOptions{Passphrase: func() ([]byte, error) { return []byte(f[1]), nil }})
	if err == nil {
		err = s.ChangePassphrase(context.Background(), []byte(f[2]))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// TestChangePassphraseKill9: a process changing the passphrase is killed
// with SIGKILL at random points. After each kill exactly one of the two
// passphrases opens the store, and every sealed key version unseals under
// it: never a mix of old and new seals.
func TestChangePassphraseKill9(t *testing.T) {
	t.Parallel() // a store of its own; 25 helper processes killed mid-way
	s := newTestStore(t)
	for i := range 120 {
		mustCreate(t, s, fmt.Sprintf("k%03d", i))
	}
	dir, cur := s.Dir(), testPass
	next := func(p string) string { return map[bool]string{true: "other", false: testPass}[p == testPass] }
	start := time.Now()
	if err := passChangeCmd(dir, cur, next(cur)).Run(); err != nil {
		t.Fatal(err)
	}
	took, cur := time.Since(start), next(cur)
	killDuring(t, took, func() *exec.Cmd { return passChangeCmd(dir, cur, next(cur)) },
		func() { cur = checkOneSeal(t, dir, cur, next(cur)) })
}

func passChangeCmd(dir, from, to string) *exec.Cmd { return helperCmd(passChangeEnv, dir, from, to) }

// helperCmd runs this test binary as the helper env names, changing the
// store in dir from one seal to another.
func helperCmd(env, dir, from, to string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s\n%s\n%s", env, dir, from, to))
	cmd.Stderr = os.Stderr
	return cmd
}

// killDuring starts 25 changes (start), kills each with SIGKILL at a
// random point within took (how long one change takes) and runs check
// after each. A change that finishes before its kill shortens took to
// its own time, so a slow first run under load does not send every kill
// after the end. It fails when no run was killed mid-way.
func killDuring(t *testing.T, took time.Duration, start func() *exec.Cmd, check func()) {
	t.Helper()
	killed := 0
	for range 25 {
		cmd := start()
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(took))))
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		} else if err != nil {
			t.Fatalf("helper failed before the kill: %v", err)
		} else {
			took = max(min(took, time.Since(began)), time.Millisecond)
		}
		check()
	}
	t.Logf("one change took %v; %d of 25 runs killed mid-way", took, killed)
	if killed == 0 {
		t.Fatal("no run was killed mid-way")
	}
}

// checkOneSeal returns the one passphrase of a and b that the store's
// verifier accepts, after unsealing every key version under it.
func checkOneSeal(t *testing.T, dir, a, b string) string {
	t.Helper()
	st := &Store{dir: dir, st: newDirStorage(dir)}
	f, err := st.load(context.Background())
	if err != nil {
		t.Fatalf("store unreadable after a kill: %v", err)
	}
	var good string
	var kek []byte
	for _, p := range []string{a, b} {
		k, err := f.KDF.deriveKEK([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		if checkVerifier(k, f.Verifier) == nil {
			if good != "" {
				t.Fatal("both passphrases verify")
			}
			good, kek = p, k
		}
	}
	if good == "" {
		t.Fatal("neither passphrase verifies")
	}
	for name, k := range f.Keys {
		for _, v := range k.Versions {
			if _, err := unseal(kek, v.Material, materialAAD(name, v.Version)); err != nil {
				t.Fatalf("key %s v%d does not unseal under the verified passphrase: a mix of seals", name, v.Version)
			}
		}
	}
	return good
}

// TestChangePassphraseCorruptMaterial: a version whose sealed material
// does not open stops the change before anything is written.
func TestChangePassphraseCorruptMaterial(t *testing.T) {
	s := newTestStore(t)
	mustCreate(t, s, "a")
	mustCreate(t, s, "b")
	path := filepath.Join(s.Dir(), metaFile)
	f, rev, err := s.loadRev(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	f.Keys["b"].Versions[0].Material[20] ^= 1
	if _, err := s.writeState(context.Background(), f, rev); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if err := s.ChangePassphrase(context.Background(), []byte("new")); !errors.Is(err, ErrCorruptStore) {
		t.Fatalf("got %v, want ErrCorruptStore", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("a failed change rewrote keystore.json")
	}
}
