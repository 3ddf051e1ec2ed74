//go:build !linux

package fsx

import (
	"os"
	"path/filepath"
)

// Add is a no-op where syncfs(2) is missing: Sync works file by file.
func (fs *Filesystems) Add(string) error { return nil }

// Sync fsyncs each file and then each of their directories (for renames),
// which makes the same writes durable as Linux's syncfs, at the cost of a
// call per file and directory; Sync(nil), which Linux uses to start the
// flush early, does nothing here. Only writes to the files named are
// covered, and an error is reported only for them (syncfs reports any
// writeback error on the filesystem). On macOS os.File.Sync is
// fcntl(F_FULLFSYNC), which also flushes the drive's cache as Linux's
// fsync does (plain fsync there does not).
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

// Datasync is f.Sync where fdatasync(2) is missing: the same data is
// durable, and the inode is written too (an extra write, no weaker
// guarantee). On macOS that is fcntl(F_FULLFSYNC) (see Sync).
func Datasync(f *os.File) error { return f.Sync() }
