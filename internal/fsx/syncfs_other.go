//go:build !linux

package fsx

import (
	"os"
	"path/filepath"
)

// Add is a no-op where syncfs(2) is missing: Sync works file by file.
func (fs *Filesystems) Add(string) error { return nil }

// Sync fsyncs each file and then each of their directories (for renames).
func (fs *Filesystems) Sync(files []string) error {
	dirs := map[string]bool{}
	for _, p := range files {
		if err := SyncPath(p); err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := SyncPath(d); err != nil {
			return err
		}
	}
	return nil
}

// Datasync is f.Sync where fdatasync(2) is missing.
func Datasync(f *os.File) error { return f.Sync() }
