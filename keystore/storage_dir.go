package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/keystack/keystack/internal/fsx"
	"github.com/keystack/keystack/policy"
)

// DirStorage is the Storage of a keystore directory: the state document
// is keystore.json, the policy document policy.json (both mode 0600,
// replaced atomically by writeFileAtomic), and Lock is flock(2) on
// keystore.lock, the lock every keystack version takes before writing.
// A revision is the file's identity: device, inode, size and modification
// time; every replacement is a new file, so a new inode.
type DirStorage struct{ dir string }

// NewDirStorage returns the Storage of the keystore directory dir; it
// creates nothing.
func NewDirStorage(dir string) *DirStorage { return &DirStorage{dir: dir} }

var _ Storage = (*DirStorage)(nil)

// Dir returns the keystore directory.
func (d *DirStorage) Dir() string { return d.dir }

func (d *DirStorage) path(doc Document) (string, int64, error) {
	switch doc {
	case StateDocument:
		return filepath.Join(d.dir, metaFile), maxMetaSize, nil
	case PolicyDocument:
		return filepath.Join(d.dir, policyFile), policy.MaxPolicySize, nil
	}
	return "", 0, fmt.Errorf("%w: unknown storage document %q", ErrInvalidOptions, doc)
}

// Read implements Storage: the file, refused before reading it whole when
// it is over its size bound (ErrCorruptStore).
func (d *DirStorage) Read(_ context.Context, doc Document) ([]byte, Revision, error) {
	path, limit, err := d.path(doc)
	if err != nil {
		return nil, NoRevision, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, NoRevision, ErrNoDocument
	}
	if err != nil {
		return nil, NoRevision, err
	}
	defer f.Close()
	fi, err := f.Stat() // of the file read, so the revision is its content's
	if err != nil {
		return nil, NoRevision, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, NoRevision, err
	}
	if int64(len(data)) > limit {
		return nil, NoRevision, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorruptStore, filepath.Base(path), limit)
	}
	return data, revisionOf(fi), nil
}

// Revision implements Storage with a stat.
func (d *DirStorage) Revision(_ context.Context, doc Document) (Revision, error) {
	path, _, err := d.path(doc)
	if err != nil {
		return NoRevision, err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NoRevision, nil
	}
	if err != nil {
		return NoRevision, err
	}
	return revisionOf(fi), nil
}

// Write implements Storage. The compare and the replace run under an
// open-file-description lock on keystore.lock (fcntl F_OFD_SETLKW, which
// does not interact with Lock's flock), so they are atomic with or without
// Lock held, against this and every other process.
func (d *DirStorage) Write(ctx context.Context, doc Document, data []byte, prev Revision) (Revision, error) {
	path, _, err := d.path(doc)
	if err != nil {
		return NoRevision, err
	}
	release, err := d.casLock()
	if err != nil {
		return NoRevision, err
	}
	defer release()
	cur, err := d.Revision(ctx, doc)
	if err != nil {
		return NoRevision, err
	}
	if cur != prev {
		return NoRevision, ErrConflict
	}
	if err := writeFileAtomic(path, data); err != nil {
		return NoRevision, err
	}
	return d.Revision(ctx, doc)
}

// casLock takes Write's short critical section.
func (d *DirStorage) casLock() (release func(), err error) {
	release, err = fsx.LockRecord(filepath.Join(d.dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("keystore: lock: %w", err)
	}
	return release, nil
}

// Lock implements Storage: flock(2) on keystore.lock (see lockDir).
func (d *DirStorage) Lock(ctx context.Context) (func(), error) { return lockDir(ctx, d.dir) }

func revisionOf(fi fs.FileInfo) Revision {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Revision(fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano()))
	}
	return Revision(fmt.Sprintf("%d:%d:%d:%d", st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano()))
}
