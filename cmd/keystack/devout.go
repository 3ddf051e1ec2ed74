package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// errNotOutput is an output path that names something keystack neither
// writes into nor replaces (a block device).
var errNotOutput = errors.New("not a file, character device, FIFO or socket")

// streamTarget reports whether out, with symbolic links followed, is an
// existing character device, FIFO or socket. Such an output is written in
// place, streamed as to stdout, and never replaced: --force only ever
// replaces regular files.
func streamTarget(out string) (bool, error) {
	fi, err := os.Stat(out)
	if err != nil {
		return false, nil // missing, or a dangling link: fsx.Create says which
	}
	m := fi.Mode()
	switch {
	case m&(fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
		return true, nil
	case m&fs.ModeDevice != 0:
		return false, fmt.Errorf("%w: %s is a block device", errNotOutput, out)
	}
	return false, nil
}

// openStream opens the device, FIFO or socket out for writing in place.
// A FIFO's open waits for a reader, as a shell's redirection does.
func openStream(out string) (io.WriteCloser, error) {
	fi, err := os.Stat(out)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSocket != 0 {
		c, err := net.Dial("unix", out)
		if err != nil {
			return nil, fmt.Errorf("connecting to socket %s: %w", out, err)
		}
		return c, nil
	}
	f, err := os.OpenFile(out, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	// out may have been replaced since the Stat: never write into a
	// regular file in place.
	if fi, err = f.Stat(); err != nil || fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s changed while it was opened", out)
	}
	return f, nil
}
