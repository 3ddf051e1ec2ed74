package fsx

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// ErrExist is returned when the target exists and overwriting was not allowed.
var ErrExist = errors.New("output file already exists")

// ErrNotRegular is returned when the target exists and is not a regular
// file (a directory, a symbolic link, a device, ...): it is never
// replaced, whether overwriting was allowed or not.
var ErrNotRegular = errors.New("output exists and is not a regular file")

// ErrNoDir is returned when the target's directory does not exist.
var ErrNoDir = errors.New("output directory does not exist")

// ErrDone is returned by Write and Commit after Commit or Abort.
var ErrDone = errors.New("file already committed or aborted")

// errUnnamed says that no unnamed temporary file can be used here.
var errUnnamed = errors.New("no unnamed temporary files here")

// noUnnamed forces named temporary files (tests of the fallback).
var noUnnamed = false

// File is an output file in progress. It is not safe for concurrent use.
type File struct {
	f         *os.File
	tmp       string // the temporary file's name; "" while it has none
	target    string
	overwrite bool
	done      bool
	closed    bool
	noSync    bool
	batch     *Batch // set by Batch.Create: Commit queues the file there
	written   int64  // bytes written so far
	flushed   int64  // bytes handed to startWriteback
}

// writebackChunk is how much written data is handed to the kernel for
// early write-back at a time.
const writebackChunk = 8 << 20

// syncFile and syncDir are fsync(2) of the file and of its directory;
// tests count their calls.
var (
	syncFile = (*os.File).Sync
	syncDir  = SyncPath
)

// pending holds the named temporary files not yet committed or aborted,
// so that a signal handler can remove them with RemovePending.
var pending sync.Map // temp path → struct{}

// Create starts writing target. The temporary file is created in target's
// directory with mode 0600 (unnamed where possible, else with O_EXCL), so
// it is never shared and never readable by others. Create fails with
// ErrNotRegular when target exists and is not a regular file, with
// ErrNoDir when its directory is missing, and unless overwrite is set with
// ErrExist when target exists; Commit then never replaces a file that
// appeared since.
func Create(target string, overwrite bool) (*File, error) {
	dir, base := filepath.Split(target)
	dir = cmp.Or(dir, ".")
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	if err := checkTarget(target, overwrite); err != nil {
		return nil, err
	}
	sweepOnce(dir)
	f, err := openUnnamed(dir, base)
	if err == nil {
		return &File{f: f, target: target, overwrite: overwrite}, nil
	}
	if !errors.Is(err, errUnnamed) {
		return nil, err
	}
	f, err = CreateTemp(dir, "."+base)
	if err != nil {
		return nil, err
	}
	pending.Store(f.Name(), struct{}{})
	return &File{f: f, tmp: f.Name(), target: target, overwrite: overwrite}, nil
}

func checkTarget(target string, overwrite bool) error {
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is %s", ErrNotRegular, target, describe(fi.Mode()))
	case !overwrite:
		return fmt.Errorf("%w: %s", ErrExist, target)
	}
	return nil
}

// describe names the kind of a file that is not a regular file.
func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s", ErrNoDir, dir)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %s is not a directory", ErrNoDir, dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrNoDir, dir)
	}
	return nil
}

// NoSync makes Commit skip the fsync of the file and of its directory, as
// cp does. Readers still never see a partial file, and a failure or an
// interruption still removes it; but after a crash of the machine soon
// after Commit, the target may be missing, empty or torn. Call it before
// the first Write.
func (f *File) NoSync() { f.noSync = true }

// Preallocate gives the file n bytes of disk space up front where that
// makes large writes cheaper (ext4), without changing its size. Call it
// before the first Write with the exact final length: space allocated
// beyond the end stays allocated. Failures are ignored.
func (f *File) Preallocate(n int64) { preallocate(f.f, n) }

// Name returns the path of the temporary file, or a description of it
// while it is unnamed.
func (f *File) Name() string { return cmp.Or(f.tmp, f.f.Name()) }

// Target returns the path the file is committed to.
func (f *File) Target() string { return f.target }

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, ErrDone
	}
	n, err := f.f.Write(p)
	f.written += int64(n)
	if !f.noSync && f.written-f.flushed >= writebackChunk {
		startWriteback(f.f, f.flushed, f.written-f.flushed)
		f.flushed = f.written
	}
	return n, err
}

// Commit syncs the temporary file and moves it to the target, then syncs the
// directory so that the new name survives a crash (unless NoSync). Without
// overwrite the file is linked in place, which fails atomically if the
// target exists by then. On any error the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return ErrDone
	}
	if f.batch != nil {
		return f.batch.queue(f)
	}
	var err error
	if !f.noSync {
		err = syncFile(f.f)
	}
	if err == nil && f.tmp != "" {
		err = f.close() // a named file closes first: NFS reports write errors there
	}
	if err == nil {
		err = f.publish()
	}
	err = cmp.Or(err, f.close())
	f.finish()
	if err != nil || f.noSync {
		return err
	}
	return syncDir(filepath.Dir(f.target))
}

func (f *File) close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	return f.f.Close()
}

// publish gives the written file the target's name.
func (f *File) publish() error {
	if f.tmp == "" && !f.overwrite {
		return noClobber(linkUnnamed(f.f, f.target), f.target)
	}
	if err := f.name(); err != nil {
		return err
	}
	if f.overwrite {
		return os.Rename(f.tmp, f.target)
	}
	err := noClobber(os.Link(f.tmp, f.target), f.target)
	if err != nil && linkUnsupported(err) {
		// Some file systems have no hard links: check, then rename. The
		// window between the two is the best such a file system allows.
		if err := checkTarget(f.target, false); err != nil {
			return err
		}
		return os.Rename(f.tmp, f.target)
	}
	return err
}

func noClobber(err error, target string) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s", ErrExist, target)
	}
	return err
}

// name links an unnamed file to a temporary name in its directory (a
// SIGKILL from here on leaves a file the next run sweeps).
func (f *File) name() error {
	if f.tmp != "" {
		return nil
	}
	dir, base := filepath.Split(f.target)
	dir = cmp.Or(dir, ".")
	for range 100 {
		tmp := filepath.Join(dir, tempName("."+base))
		pending.Store(tmp, struct{}{})
		err := linkUnnamed(f.f, tmp)
		if err == nil {
			f.tmp = tmp
			return nil
		}
		pending.Delete(tmp)
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return fmt.Errorf("no free temporary name in %s", dir)
}

func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EXDEV)
}

// Abort closes and removes the temporary file. It is a no-op after Commit or
// a previous Abort, so it is safe to defer.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	err := f.close()
	f.finish()
	return err
}

// finish removes the temporary file's name if it has one (after a link or
// a failure it is still there; after a rename this is a harmless ENOENT)
// and forgets it.
func (f *File) finish() {
	f.done = true
	if f.tmp != "" {
		_ = os.Remove(f.tmp)
		pending.Delete(f.tmp)
	}
}

// RemovePending removes every named temporary file not yet committed or
// aborted. Signal handlers call it before the process exits; unnamed ones
// go with the process.
func RemovePending() {
	pending.Range(func(k, _ any) bool {
		_ = os.Remove(k.(string))
		pending.Delete(k)
		return true
	})
}
