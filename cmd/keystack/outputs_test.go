package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// Script commands for outputs that are not regular files. Nodes are made
// in the script's temp dir: the real /dev/null is never written.

// mknodCondition is the "mknod" script condition: making device nodes
// needs CAP_MKNOD; under CI=true its absence fails the test.
func mknodCondition() (bool, error) {
	dir, err := os.MkdirTemp("", "keystack-mknod-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	err = mknodNull(filepath.Join(dir, "null"), unix.S_IFCHR|0o666)
	switch {
	case err == nil:
		return true, nil
	case os.Getenv("CI") == "true":
		return false, fmt.Errorf("CI=true but mknod fails: %v", err)
	}
	return false, nil
}

// cmdMknod makes "mknod NAME c|b": a node for device 1,3 (what /dev/null is).
func cmdMknod(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 || (args[1] != "c" && args[1] != "b") {
		ts.Fatalf("usage: mknod NAME c|b")
	}
	mode := uint32(unix.S_IFCHR)
	if args[1] == "b" {
		mode = unix.S_IFBLK
	}
	ts.Check(mknodNull(ts.MkAbs(args[0]), mode|0o666))
}

// cmdMkfifo makes "mkfifo NAME".
func cmdMkfifo(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mkfifo NAME")
	}
	ts.Check(unix.Mkfifo(ts.MkAbs(args[0]), 0o600))
}

// cmdFtype checks "ftype NAME char|block|fifo|socket|file": what NAME is
// (without following a symbolic link).
func cmdFtype(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: ftype NAME KIND")
	}
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	m := fi.Mode()
	kind := map[bool]string{true: "file"}[m.IsRegular()]
	switch {
	case m&fs.ModeSymlink != 0:
		kind = "symlink"
	case m&fs.ModeCharDevice != 0:
		kind = "char"
	case m&fs.ModeDevice != 0:
		kind = "block"
	case m&fs.ModeNamedPipe != 0:
		kind = "fifo"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	}
	if kind != args[1] {
		ts.Fatalf("%s is %q (%v), want %s", args[0], kind, m, args[1])
	}
}

// cmdUnixListen runs "unixlisten SOCK FILE": a unix stream socket at SOCK
// that copies what its first connection sends into FILE; "unixwait SOCK"
// waits until that connection ended.
func cmdUnixListen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: unixlisten SOCK FILE")
	}
	l, err := net.Listen("unix", ts.MkAbs(args[0]))
	ts.Check(err)
	done := make(chan error, 1)
	ts.Defer(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		data, err := io.ReadAll(c)
		if err == nil {
			err = os.WriteFile(ts.MkAbs(args[1]), data, 0o600)
		}
		done <- err
	}()
	listeners.Store(ts.MkAbs(args[0]), done)
}

var listeners sync.Map // socket path → chan error

func cmdUnixWait(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: unixwait SOCK")
	}
	done, ok := listeners.Load(ts.MkAbs(args[0]))
	if !ok {
		ts.Fatalf("unixwait: no unixlisten %s", args[0])
	}
	select {
	case err := <-done.(chan error):
		ts.Check(err)
	case <-time.After(30 * time.Second):
		ts.Check(errors.New("unixwait: no connection ended within 30s"))
	}
}

// rootCondition is the "root" script condition (chown to another user);
// under CI=true not being root fails the test.
func rootCondition() (bool, error) {
	if os.Geteuid() == 0 {
		return true, nil
	}
	if os.Getenv("CI") == "true" {
		return false, errors.New("CI=true but not root: cannot test files owned by another user")
	}
	return false, nil
}

// cmdChown runs "chown NAME UID".
func cmdChown(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: chown NAME UID")
	}
	var uid int
	_, err := fmt.Sscan(args[1], &uid)
	ts.Check(err)
	ts.Check(os.Chown(ts.MkAbs(args[0]), uid, -1))
}
