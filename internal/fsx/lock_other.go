//go:build !linux

package fsx

import (
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
	return lockOpened(path+recordSuffix, func(fd uintptr) error { return unix.Flock(int(fd), unix.LOCK_EX) })
}
