package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// Filesystems holds the filesystems that writes go to, to make the writes
// of many files durable together: one syncfs(2) per filesystem where Linux
// has it, instead of an fsync(2) per file and directory. It is not safe
// for concurrent use.
type Filesystems struct {
	dirs []*os.File
	devs map[uint64]bool
}

// NewFilesystems returns an empty set; Add the directories before writing into them.
func NewFilesystems() *Filesystems { return &Filesystems{devs: map[uint64]bool{}} }

// OpenFilesystems returns the set of the filesystems holding dirs.
func OpenFilesystems(dirs ...string) (*Filesystems, error) {
	fs := NewFilesystems()
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

// SyncPath fsyncs the file or directory at p; after a rename or a link,
// SyncPath of the directory makes the new name durable. It is keystack's
// one fsync rule: a directory on a filesystem that cannot sync
// directories (EINVAL) counts as synced.
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

// WriteFileSync creates or truncates path with mode perm (before umask),
// writes data, fsyncs it and then its directory, so that path and its
// content survive a crash once it returns. It is not atomic: a crash
// during the write can leave a partial file (callers that need
// all-or-nothing use Create).
func WriteFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return SyncPath(filepath.Dir(path))
}
