package keystore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/storagetest"
)

// TestDirStorageConformance: the keystore directory passes the Storage
// suite, two handles on one directory standing in for two processes.
func TestDirStorageConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) keystore.Storage {
		return keystore.NewDirStorage(t.TempDir())
	}, func(t *testing.T, s keystore.Storage) keystore.Storage {
		return keystore.NewDirStorage(keystore.DirOf(s))
	})
}

// TestDirStorageFiles: the directory's documents are keystore.json and
// policy.json (mode 0600), so stores written before Storage read the same.
func TestDirStorageFiles(t *testing.T) {
	dir := t.TempDir()
	s := keystore.NewDirStorage(dir)
	ctx := context.Background()
	for doc, name := range map[keystore.Document]string{keystore.StateDocument: "keystore.json", keystore.PolicyDocument: "policy.json"} {
		if _, err := s.Write(ctx, doc, []byte(name+" content"), keystore.NoRevision); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", name, err, fi)
		}
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if string(data) != name+" content" {
			t.Fatalf("%s holds %q", name, data)
		}
	}
	if _, _, err := s.Read(ctx, keystore.Document("other")); err == nil {
		t.Fatal("an unknown document was read")
	}
}
