// Package atomicfile writes output files so that a reader never sees a
// partial file: data goes to a private temporary file beside the target,
// which replaces the target only by rename after it was fully written and
// synced. On failure, or when the process is interrupted, the temporary file
// is removed and the target is left as it was.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/keystack/keystack/internal/durable"
)

// ErrExist is returned when the target exists and overwriting was not allowed.
var ErrExist = errors.New("atomicfile: output file already exists")

// ErrDone is returned by Write and Commit after Commit or Abort.
var ErrDone = errors.New("atomicfile: file already committed or aborted")

// File is an output file in progress. It is not safe for concurrent use.
type File struct {
	f         *os.File
	target    string
	overwrite bool
	done      bool
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
	syncDir  = durable.SyncPath
)

// pending holds the temporary files not yet committed or aborted, so that
// a signal handler can remove them with RemovePending.
var pending sync.Map // temp path → struct{}

// Create starts writing target. The temporary file is created in target's
// directory with mode 0600 and O_EXCL, so it is never shared and never
// readable by others. Unless overwrite is set, Create fails with ErrExist
// when target exists, and Commit never replaces a file that appeared since.
func Create(target string, overwrite bool) (*File, error) {
	if err := checkTarget(target, overwrite); err != nil {
		return nil, err
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	// os.CreateTemp opens with O_RDWR|O_CREATE|O_EXCL and mode 0600.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	pending.Store(f.Name(), struct{}{})
	return &File{f: f, target: target, overwrite: overwrite}, nil
}

func checkTarget(target string, overwrite bool) error {
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%w: %s is a directory", ErrExist, target)
	case !overwrite:
		return fmt.Errorf("%w: %s", ErrExist, target)
	}
	return nil
}

// NoSync makes Commit skip the fsync of the file and of its directory, as
// cp does. Readers still never see a partial file, and a failure or an
// interruption still removes it; but after a crash of the machine soon
// after Commit, the target may be missing, empty or torn. Call it before
// the first Write.
func (f *File) NoSync() { f.noSync = true }

// Name returns the path of the temporary file.
func (f *File) Name() string { return f.f.Name() }

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
// directory so the rename survives a crash (unless NoSync). Without overwrite it links the
// file in place, which fails atomically if the target exists by then. On any
// error the temporary file is removed.
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
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.publish()
	}
	f.finish()
	if err != nil || f.noSync {
		return err
	}
	return syncDir(filepath.Dir(f.target))
}

func (f *File) publish() error {
	tmp := f.f.Name()
	if f.overwrite {
		return os.Rename(tmp, f.target)
	}
	err := os.Link(tmp, f.target)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s", ErrExist, f.target)
	}
	if err != nil && linkUnsupported(err) {
		// Some file systems have no hard links: check, then rename. The
		// window between the two is the best such a file system allows.
		if err := checkTarget(f.target, false); err != nil {
			return err
		}
		return os.Rename(tmp, f.target)
	}
	return err
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
	err := f.f.Close()
	f.finish()
	return err
}

// finish removes the temporary file (after a link or a failure it is still
// there; after a rename this is a harmless ENOENT) and forgets it.
func (f *File) finish() {
	f.done = true
	_ = os.Remove(f.f.Name())
	pending.Delete(f.f.Name())
}

// RemovePending removes every temporary file not yet committed or aborted.
// Signal handlers call it before the process exits.
func RemovePending() {
	pending.Range(func(k, _ any) bool {
		_ = os.Remove(k.(string))
		pending.Delete(k)
		return true
	})
}
