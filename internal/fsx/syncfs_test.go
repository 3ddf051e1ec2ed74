package fsx

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSyncAfterWrites(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	fs, err := OpenFilesystems(dir, sub, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	p := filepath.Join(sub, "f")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fs.Sync([]string{p}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Add(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Add of a missing directory succeeded")
	}
}
