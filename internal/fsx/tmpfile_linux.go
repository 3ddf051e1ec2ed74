package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// openUnnamed opens an unnamed temporary file in dir (O_TMPFILE), which no
// directory lists and which the kernel frees when the process dies, even
// by SIGKILL. It reports errUnnamed where the kernel or the filesystem has
// no O_TMPFILE, or where linkUnnamed could not publish it (no /proc).
func openUnnamed(dir, base string) (*os.File, error) {
	if noUnnamed || !procFD() {
		return nil, errUnnamed
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	switch {
	case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL):
		return nil, errUnnamed
	case err != nil:
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed temporary file for "+base+")")), nil
}

// linkUnnamed gives the unnamed file f the name path, failing with EEXIST
// if path exists. It links f's /proc/self/fd entry, which works without
// the privilege that linkat's AT_EMPTY_PATH needs.
func linkUnnamed(f *os.File, path string) error {
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "linkat", Old: f.Name(), New: path, Err: err}
	}
	return nil
}

// procFD reports whether /proc/self/fd is there for linkUnnamed.
var procFD = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
})
