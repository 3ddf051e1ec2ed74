package fsx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A held LockFile lock makes a second LockFile of the same path wait until
// its context ends, even in the same process; after unlock it succeeds.
func TestLockFileExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	unlock, err := LockFile(context.Background(), path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := LockFile(ctx, path, time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second LockFile while held: %v, want context.DeadlineExceeded", err)
	}
	unlock()
	unlock2, err := LockFile(context.Background(), path, time.Millisecond)
	if err != nil {
		t.Fatalf("LockFile after unlock: %v", err)
	}
	unlock2()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("lock file removed: %v", err)
	}
}

// LockFile in a missing directory fails at once with the open error.
func TestLockFileNoDir(t *testing.T) {
	_, err := LockFile(context.Background(), filepath.Join(t.TempDir(), "no", "l"), time.Millisecond)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LockFile in a missing directory: %v, want ErrNotExist", err)
	}
}

// Lock waits for another open file description's lock: the second Lock
// returns only after the first holder unlocks.
func TestLockWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	a, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := Lock(a); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- Lock(b) }()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned while the first was held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	Unlock(a)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Lock still waiting after Unlock")
	}
	Unlock(b)
}

// LockRecord excludes a second LockRecord of the same file, even in this
// process, until release; it does not wait for a flock on the same file.
func TestLockRecordExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	unlock, err := LockFile(context.Background(), path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	release, err := LockRecord(path)
	if err != nil {
		t.Fatalf("LockRecord under a flock: %v", err)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := LockRecord(path)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("second LockRecord returned while the first was held")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case r := <-got:
		if r != nil {
			r()
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second LockRecord still waiting after release")
	}
}
