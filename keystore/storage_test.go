package keystore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/policy"
)

// countingStorage counts the reads of the state document and the
// revision checks of it.
type countingStorage struct {
	Storage
	reads, revisions atomic.Int64
}

func (c *countingStorage) Revision(ctx context.Context, doc Document) (Revision, error) {
	if doc == StateDocument {
		c.revisions.Add(1)
	}
	return c.Storage.Revision(ctx, doc)
}

func (c *countingStorage) Read(ctx context.Context, doc Document) ([]byte, Revision, error) {
	if doc == StateDocument {
		c.reads.Add(1)
	}
	return c.Storage.Read(ctx, doc)
}

// countedStore opens dir through a countingStorage, as the CLI opens it.
func countedStore(t *testing.T, dir, pass string) (*Store, *countingStorage) {
	t.Helper()
	c := &countingStorage{Storage: newDirStorage(dir)}
	s, err := Open(dir, OpenOptions{Storage: c, Now: fixedNow, PrincipalFromEnv: true,
		Passphrase: func() ([]byte, error) { return []byte(pass), nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// manyVersions makes keys a, b and c of three versions each and returns
// the store's directory.
func manyVersions(t *testing.T) string {
	t.Helper()
	s := newTestStore(t)
	defer s.Close()
	for _, name := range []string{"a", "b", "c"} {
		mustCreate(t, s, name)
		for range 2 {
			if _, err := s.RotateKey(context.Background(), name, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s.Dir()
}

func stMessage(t *testing.T, s *Store, key string) *envelope.EncryptionMaterials {
	t.Helper()
	kr, err := s.EncryptKeyring(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: map[string]string{"app": "t"}, PlaintextLength: -1}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func stOpen(t *testing.T, kr envelope.Keyring, m *envelope.EncryptionMaterials) {
	t.Helper()
	d := &envelope.DecryptionMaterials{Suite: m.Suite, EncryptionContext: m.EncryptionContext}
	if err := kr.OnDecrypt(context.Background(), d, m.EncryptedDataKeys); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.DataKey, m.DataKey) {
		t.Fatal("decrypted data key differs")
	}
}

// TestOneStateReadPerCommand: an encrypt and a decrypt (open, keyring,
// one message, close with its audit anchor write) read the state once, and
// unseal one key version each although the store holds nine.
func TestOneStateReadPerCommand(t *testing.T) {
	dir := manyVersions(t)
	s, c := countedStore(t, dir, testPass)
	m := stMessage(t, s, "b")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, u := c.reads.Load(), s.unseals.Load(); n != 1 || u != 1 {
		t.Fatalf("encrypt: %d state reads, %d unseals; want 1 and 1 (the primary)", n, u)
	}
	s, c = countedStore(t, dir, testPass)
	kr, err := s.DecryptKeyring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stOpen(t, kr, m)
	stOpen(t, kr, m) // the version stays unsealed
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, u := c.reads.Load(), s.unseals.Load(); n != 1 || u != 1 {
		t.Fatalf("decrypt: %d state reads, %d unseals; want 1 and 1 (the version the EDK names)", n, u)
	}
}

// TestLazyUnsealAfterReload: a version made by another process after the
// keyring is read once more and unsealed alone.
func TestLazyUnsealAfterReload(t *testing.T) {
	dir := manyVersions(t)
	s, c := countedStore(t, dir, testPass)
	defer s.Close()
	kr, err := s.DecryptKeyring(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	other := openTestStore(t, dir, testPass)
	if _, err := other.RotateKey(context.Background(), "b", "test"); err != nil {
		t.Fatal(err)
	}
	m := stMessage(t, other, "b")
	other.Close()
	stOpen(t, kr, m)
	if n, u := c.reads.Load(), s.unseals.Load(); n != 2 || u != 1 {
		t.Fatalf("%d state reads, %d unseals; want 2 (open, reload) and 1 (b/v4)", n, u)
	}
}

// TestLazyUnsealPassphraseChecked: unsealing late does not defer the
// passphrase check: a wrong one fails DecryptKeyring, unsealing nothing.
func TestLazyUnsealPassphraseChecked(t *testing.T) {
	dir := manyVersions(t)
	s, _ := countedStore(t, dir, "wrong")
	defer s.Close()
	if _, err := s.DecryptKeyring(context.Background()); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("DecryptKeyring with a wrong passphrase: %v, want ErrBadPassphrase", err)
	}
	if u := s.unseals.Load(); u != 0 {
		t.Fatalf("%d unseals under a wrong passphrase", u)
	}
}

// TestLazyUnsealCorruptVersion: a damaged version fails the message that
// names it, and only that one.
func TestLazyUnsealCorruptVersion(t *testing.T) {
	dir := manyVersions(t)
	s, _ := countedStore(t, dir, testPass)
	defer s.Close()
	good := stMessage(t, s, "a")
	bad := stMessage(t, s, "b")
	f, rev, err := s.loadRev(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	f.Keys["b"].Versions[2].Material[20] ^= 1
	if _, err := s.writeState(context.Background(), f, rev); err != nil {
		t.Fatal(err)
	}
	kr, err := s.DecryptKeyring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stOpen(t, kr, good)
	d := &envelope.DecryptionMaterials{Suite: bad.Suite, EncryptionContext: bad.EncryptionContext}
	if err := kr.OnDecrypt(context.Background(), d, bad.EncryptedDataKeys); err == nil || d.DataKey != nil {
		t.Fatalf("a damaged version decrypted: %v", err)
	}
}

// TestPrincipalFromEnvOption: OpenOptions.PrincipalFromEnv acts as
// $KEYSTACK_PRINCIPAL only in a store initialized to trust it.
func TestPrincipalFromEnvOption(t *testing.T) {
	t.Setenv(PrincipalEnv, "user:mallory")
	dir := manyVersions(t)
	s, _ := countedStore(t, dir, testPass)
	if s.Principal() == "user:mallory" {
		t.Fatal("a store not trusting the environment took its principal")
	}
	s.Close()
	dir = t.TempDir() + "/trusting"
	if _, err := Init(dir, InitOptions{Passphrase: []byte(testPass), TrustPrincipalEnv: true, Owner: "user:mallory"}); err != nil {
		t.Fatal(err)
	}
	s, c := countedStore(t, dir, testPass)
	defer s.Close()
	if s.Principal() != "user:mallory" || c.reads.Load() != 1 {
		t.Fatalf("principal %q after %d reads, want user:mallory after 1", s.Principal(), c.reads.Load())
	}

}

// TestServerStateOncePerRevision: the key server's per-request reads
// (SealData, OpenData) parse the state and unseal a version once per
// revision, and a change by another process (rotation, then disabling the
// key) is seen by the next request.
func TestServerStateOncePerRevision(t *testing.T) {
	ctx := context.Background()
	dir := manyVersions(t)
	s, c := countedStore(t, dir, testPass)
	defer s.Close()
	for range 5 {
		d, err := ops(s).SealData(ctx, policy.ActionEncrypt, "b", []byte("p"), fixed([]byte("aad")), nil)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := ops(s).OpenData(ctx, policy.ActionDecrypt, "b", *d, []byte("aad"), nil); err != nil || string(pt) != "p" {
			t.Fatalf("OpenData = %q, %v", pt, err)
		}
	}
	if n, u := c.reads.Load(), s.unseals.Load(); n != 1 || u != 1 {
		t.Fatalf("%d state reads, %d unseals; want 1 and 1", n, u)
	}
	other := openTestStore(t, dir, testPass)
	defer other.Close()
	if _, err := other.RotateKey(ctx, "b", "test"); err != nil {
		t.Fatal(err)
	}
	d, err := ops(s).SealData(ctx, policy.ActionEncrypt, "b", []byte("p"), fixed(nil), nil)
	if err != nil || d.Version != 4 {
		t.Fatalf("after another process rotated: version %v, %v; want 4", d, err)
	}
	if n, u := c.reads.Load(), s.unseals.Load(); n != 2 || u != 2 {
		t.Fatalf("%d state reads, %d unseals; want 2 and 2 (b/v4)", n, u)
	}
	if err := ops(other).SetKeyEnabled(ctx, "b", false); err != nil {
		t.Fatal(err)
	}
	if _, err := ops(s).SealData(ctx, policy.ActionEncrypt, "b", []byte("p"), fixed(nil), nil); !errors.Is(err, serverstore.ErrKeyState) {
		t.Fatalf("SealData on a key another process disabled: %v, want serverstore.ErrKeyState", err)
	}
}

// TestReadOncePerRequest: under one request's ReadOnce context, every
// state read of a mixed request (authentication, the key's server state,
// an alias, describing and sealing) makes one revision check in all; the
// next request sees what another process changed meanwhile; and a write
// inside a request whose check is stale still lands (writes compare
// against the Storage, not the request's view).
func TestReadOncePerRequest(t *testing.T) {
	dir := manyVersions(t)
	s, c := countedStore(t, dir, testPass)
	defer s.Close()
	o := ops(s)
	cred, err := s.CreateCredential(context.Background(), "service:app")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.CreateAlias(context.Background(), "alias/b", "b"); err != nil {
		t.Fatal(err)
	}
	request := func() (context.Context, int64) {
		ctx := o.ReadOnce(context.Background())
		before := c.revisions.Load()
		if _, err := o.LookupCredential(ctx, cred.AccessKeyID); err != nil {
			t.Fatal(err)
		}
		if name, err := o.ResolveAlias(ctx, "alias/b"); err != nil || name != "b" {
			t.Fatalf("ResolveAlias = %q, %v", name, err)
		}
		if _, err := o.ServerKey(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DescribeKey(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if _, err := o.SealData(ctx, policy.ActionEncrypt, "b", []byte("p"), fixed(nil), nil); err != nil {
			return ctx, -1
		}
		return ctx, c.revisions.Load() - before
	}
	if _, n := request(); n != 1 {
		t.Fatalf("one request made %d revision checks of the state, want 1", n)
	}
	other := openTestStore(t, dir, testPass)
	defer other.Close()
	ctx, _ := request()
	if err := ops(other).SetKeyEnabled(context.Background(), "b", false); err != nil {
		t.Fatal(err)
	}
	if err := o.TagKey(ctx, "b", map[string]string{"team": "x"}); err != nil {
		t.Fatalf("a write in a request that checked before another process wrote: %v", err)
	}
	if st, err := ops(other).ServerKey(context.Background(), "b"); err != nil || st.State != serverstore.Disabled || st.Tags["team"] != "x" {
		t.Fatalf("after both writes: %+v, %v; want disabled and tagged", st, err)
	}
	if _, n := request(); n != -1 {
		t.Fatal("the next request still sealed under a key another process disabled")
	}
	if _, err := other.CreateKey(context.Background(), "late", CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	locked, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Unlock()
	if keys, err := locked.ListKeys(ctx); err != nil || !slices.ContainsFunc(keys, func(k KeyInfo) bool { return k.Name == "late" }) {
		t.Fatalf("ListKeys under the lock, in a request that checked before: %d keys, %v; want the key another process made", len(keys), err)
	}
}

// TestOpenChecksStateOnce: Open and the gate it opens read the state
// document and check its revision once.
func TestOpenChecksStateOnce(t *testing.T) {
	s, c := countedStore(t, manyVersions(t), testPass)
	defer s.Close()
	if r, n := c.reads.Load(), c.revisions.Load(); r != 1 || n != 1 {
		t.Fatalf("Open made %d reads and %d revision checks of the state, want 1 and 1", r, n)
	}
}
