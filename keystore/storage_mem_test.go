package keystore_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/storagetest"
	"github.com/keystack/keystack/policy"
)

// memStorage is a Storage in memory with numbered revisions, as a database
// row would have: it shows the Store needs nothing of a directory beyond
// the audit log.
type memStorage struct {
	lock chan struct{}
	mu   sync.Mutex
	docs map[keystore.Document][]byte
	revs map[keystore.Document]int
}

func newMemStorage() *memStorage {
	return &memStorage{lock: make(chan struct{}, 1), docs: map[keystore.Document][]byte{}, revs: map[keystore.Document]int{}}
}

func (m *memStorage) rev(doc keystore.Document) keystore.Revision {
	if _, ok := m.docs[doc]; !ok {
		return keystore.NoRevision
	}
	return keystore.Revision(strconv.Itoa(m.revs[doc]))
}

func (m *memStorage) Read(_ context.Context, doc keystore.Document) ([]byte, keystore.Revision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.docs[doc]
	if !ok {
		return nil, keystore.NoRevision, keystore.ErrNoDocument
	}
	return append([]byte(nil), data...), m.rev(doc), nil
}

func (m *memStorage) Revision(_ context.Context, doc keystore.Document) (keystore.Revision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev(doc), nil
}

func (m *memStorage) Write(_ context.Context, doc keystore.Document, data []byte, prev keystore.Revision) (keystore.Revision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rev(doc) != prev {
		return keystore.NoRevision, keystore.ErrConflict
	}
	m.docs[doc] = append([]byte(nil), data...)
	m.revs[doc]++
	return m.rev(doc), nil
}

func (m *memStorage) Lock(ctx context.Context) (func(), error) {
	select {
	case m.lock <- struct{}{}:
		return func() { <-m.lock }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestMemStorageConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) keystore.Storage { return newMemStorage() }, nil)
}

// TestStoreOnOtherStorage: a store whose documents were moved into another
// Storage keeps all its state there: keys made, rotated, used and audited
// through it leave keystore.json and policy.json in the directory as they
// were.
func TestStoreOnOtherStorage(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ks")
	s, err := keystore.Init(dir, keystore.InitOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	mem := newMemStorage()
	data, _, err := keystore.NewDirStorage(dir).Read(ctx, keystore.StateDocument)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Write(ctx, keystore.StateDocument, data, keystore.NoRevision); err != nil {
		t.Fatal(err)
	}
	s, err = keystore.Open(dir, keystore.OpenOptions{Storage: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateKey(ctx, "k", keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, "k", "test"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Gate().GetPolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Gate().PutPolicy(ctx, p, policy.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	enc, err := s.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := s.DecryptKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roundTripKeyrings(t, enc, dec)
	if _, err := s.Gate().AuditCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "keystore.json")); string(got) != string(data) {
		t.Fatal("keystore.json changed although the store's state is elsewhere")
	}
	if _, err := os.Stat(filepath.Join(dir, "policy.json")); !os.IsNotExist(err) {
		t.Fatalf("policy.json written in the directory: %v", err)
	}
	if _, _, err := mem.Read(ctx, keystore.PolicyDocument); err != nil {
		t.Fatalf("the policy is not in the storage: %v", err)
	}
	if keys, err := s.ListKeys(ctx); err != nil || len(keys) != 1 || keys[0].Primary != 2 {
		t.Fatalf("ListKeys = %+v, %v", keys, err)
	}
}

func roundTripKeyrings(t *testing.T, enc, dec envelope.Keyring) {
	t.Helper()
	ctx := context.Background()
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: map[string]string{"a": "b"}, PlaintextLength: -1}
	if err := enc.OnEncrypt(ctx, m); err != nil {
		t.Fatal(err)
	}
	d := &envelope.DecryptionMaterials{Suite: m.Suite, EncryptionContext: m.EncryptionContext}
	if err := dec.OnDecrypt(ctx, d, m.EncryptedDataKeys); err != nil || string(d.DataKey) != string(m.DataKey) {
		t.Fatalf("round trip: %v", err)
	}
}
