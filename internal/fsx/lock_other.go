//go:build !linux

package fsx

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// recordSuffix names the file LockRecord locks in place of path where
// there are no open-file-description record locks.
const recordSuffix = ".record"

// LockRecord takes an exclusive lock that excludes every other
// LockRecord of path, in this process or another, waiting for it, and
// that does not interact with a flock(2) on path itself. Outside Linux
// there are no public open-file-description record locks (macOS and
// FreeBSD have only per-process fcntl locks, which do not exclude the
// same process, and which conflict with flock(2) on the same file), so it
// takes a flock(2) on path+".record" instead, created with mode 0600 and
// never removed. release closes that file, which releases the lock.
func LockRecord(path string) (release func(), err error) {
	f, err := os.OpenFile(path+recordSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
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
