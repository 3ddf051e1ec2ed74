package fsx

import (
	"io"

	"golang.org/x/sys/unix"
)

// LockRecord opens path (creating it with mode 0600) and takes an
// exclusive open-file-description record lock on the whole file (fcntl
// F_OFD_SETLKW), waiting for it. Record locks and flock(2) locks do not
// exclude each other, so one file can carry a long flock and a short
// critical section. release closes the file, which releases the lock.
func LockRecord(path string) (release func(), err error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	return lockOpened(path, func(fd uintptr) error { return unix.FcntlFlock(fd, unix.F_OFD_SETLKW, &lk) })
}
