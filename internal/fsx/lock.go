package fsx

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive flock(2) on f, waiting while another open file
// description (of this process or another) holds it. The lock belongs to
// f's open file description: two opens of one file exclude each other
// even within a process.
func Lock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }

// Unlock releases the flock Lock took on f. It cannot usefully fail: the
// lock also goes when f's last descriptor is closed.
func Unlock(f *os.File) { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// LockFile opens path (creating it with mode 0600) and takes an exclusive
// flock(2) on it, trying again every poll until the lock is free or ctx is
// done (then it returns ctx.Err()). unlock releases the lock and closes
// the file. The file is never removed, so two holders can never lock
// different files of one name.
func LockFile(ctx context.Context, path string, poll time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { Unlock(f); _ = f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// lockOpened opens path (creating it with mode 0600) and runs lock on it,
// again when a signal interrupts the wait; release closes the file, which
// releases the lock. LockRecord's platforms differ only in the lock.
func lockOpened(path string, lock func(fd uintptr) error) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = lock(f.Fd())
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
