package fsx

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// LockRecord opens path (creating it with mode 0600) and takes an
// exclusive open-file-description record lock on the whole file (fcntl
// F_OFD_SETLKW), waiting for it. Record locks and flock(2) locks do not
// exclude each other, so one file can carry a long flock and a short
// critical section. release closes the file, which releases the lock.
func LockRecord(path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	for {
		err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}
