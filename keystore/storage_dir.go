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
	"time"

	"github.com/keystack/keystack/internal/fsx"
	"github.com/keystack/keystack/policy"
)

const (
	metaFile = "keystore.json"
	lockFile = "keystore.lock"
	// maxMetaSize caps how much of keystore.json is read before parsing.
	maxMetaSize = 16 << 20
	// lockPoll is how often a waiting writer retries the lock.
	lockPoll = 5 * time.Millisecond
)

// dirStorage is the Storage of a keystore directory: the state document
// is keystore.json, the policy document policy.json (both mode 0600,
// replaced atomically by writeFileAtomic), and Lock is flock(2) on
// keystore.lock, the lock every keystack version takes before writing.
// A revision is the file's identity: device, inode, size and modification
// time; every replacement is a new file, so a new inode. (A hand edit in
// place that keeps both size and modification time is not a new revision:
// an open Store sees it when it is opened again.)
type dirStorage struct{ dir string }

// newDirStorage returns the Storage of the keystore directory dir; it
// creates nothing.
func newDirStorage(dir string) *dirStorage { return &dirStorage{dir: dir} }

var _ Storage = (*dirStorage)(nil)

// Dir returns the keystore directory.
func (d *dirStorage) Dir() string { return d.dir }

func (d *dirStorage) path(doc Document) (string, int64, error) {
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
func (d *dirStorage) Read(_ context.Context, doc Document) ([]byte, Revision, error) {
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
func (d *dirStorage) Revision(_ context.Context, doc Document) (Revision, error) {
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

// Write implements Storage. The compare and the replace run under
// fsx.LockRecord of keystore.lock (on Linux an open-file-description
// record lock, elsewhere a flock of keystore.lock.record; neither
// interacts with Lock's flock), so they are atomic with or without Lock
// held, against this and every other process.
func (d *dirStorage) Write(ctx context.Context, doc Document, data []byte, prev Revision) (Revision, error) {
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
func (d *dirStorage) casLock() (release func(), err error) {
	release, err = fsx.LockRecord(filepath.Join(d.dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("keystore: lock: %w", err)
	}
	return release, nil
}

// Lock implements Storage: flock(2) on keystore.lock (see lockDir).
func (d *dirStorage) Lock(ctx context.Context) (func(), error) { return lockDir(ctx, d.dir) }

func revisionOf(fi fs.FileInfo) Revision {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Revision(fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano()))
	}
	return Revision(fmt.Sprintf("%d:%d:%d:%d", st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano()))
}

// lockDir takes the store's exclusive write lock: flock(2) on keystore.lock,
// which also excludes other Store values of this process (each opens its own
// file description). It waits until the lock is free or ctx is done. The
// lock file is never removed, so two writers can never lock different files.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	unlock, err = fsx.LockFile(ctx, filepath.Join(dir, lockFile), lockPoll)
	if err != nil && !errors.Is(err, ctx.Err()) {
		return nil, fmt.Errorf("keystore: lock: %w", err)
	}
	return unlock, err
}

// writeFileAtomic replaces path with data so that readers see either the
// old or the new file, never a mix, even after a crash, and so that no
// copy of data is left behind if the process dies while writing: see
// internal/fsx (an unnamed 0600 file on Linux, fsynced, then
// renamed over path, and the directory fsynced).
func writeFileAtomic(path string, data []byte) error {
	f, err := fsx.Create(path, true)
	if err != nil {
		return fmt.Errorf("keystore: write: %w", err)
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("keystore: write: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("keystore: write: %w", err)
	}
	return nil
}
