// Package durable makes the writes of many files durable together: one
// syncfs(2) per filesystem where Linux has it, instead of an fsync(2) per
// file and directory.
package durable

import (
	"errors"
	"os"
	"syscall"
)

// Filesystems holds the filesystems that writes go to. It is not safe for
// concurrent use.
type Filesystems struct {
	dirs []*os.File
	devs map[uint64]bool
}

// New returns an empty set; Add the directories before writing into them.
func New() *Filesystems { return &Filesystems{devs: map[uint64]bool{}} }

// Open returns the set of the filesystems holding dirs.
func Open(dirs ...string) (*Filesystems, error) {
	fs := New()
	for _, d := range dirs {
		if err := fs.Add(d); err != nil {
			fs.Close()
			return nil, err
		}
	}
	return fs, nil
}

// Close releases the filesystems.
func (fs *Filesystems) Close() {
	for _, d := range fs.dirs {
		d.Close()
	}
}

// SyncPath fsyncs the file or directory at p. A directory on a filesystem
// that cannot sync directories (EINVAL) counts as synced.
func SyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
