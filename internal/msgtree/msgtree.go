// Package msgtree is how keystack reads trees of messages, shared by
// rewrap (package rotation) and the inventory (internal/inventory): one
// walk that passes over rewrap's scratch files, and one bounded read of a
// message's header from the start of its file.
package msgtree

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/fsx"
)

// ScratchPrefix starts the names of the scratch files a rewrap keeps
// beside a message while it works on it. Walk passes over them; the next
// rewrap of the message finishes or removes them.
const ScratchPrefix = ".ks-rewrap."

// IsScratch reports whether name is a rewrap scratch file's name.
func IsScratch(name string) bool { return strings.HasPrefix(name, ScratchPrefix) }

// Walks, read by tests, counts the roots Walk walks.
var Walks atomic.Int64

// Walk calls fn for every regular file under paths (files and directory
// trees), in lexical order, and scratch for rewrap scratch files (nil:
// pass over them); an error from fn stops the walk. Symbolic links are not
// followed.
func Walk(ctx context.Context, paths []string, scratch func(path string), fn func(path string, d fs.DirEntry) error) error {
	w := fsx.Walk{Skip: func(path string, d fs.DirEntry) bool {
		if !IsScratch(d.Name()) {
			return false
		}
		if scratch != nil {
			scratch(path)
		}
		return true
	}}
	for _, root := range paths {
		Walks.Add(1)
		if err := fsx.WalkFiles(ctx, root, w, fn); err != nil {
			return err
		}
	}
	return nil
}

// ReadSize covers the headers of nearly all messages in one read.
const ReadSize = 4096

// ErrRead matches ReadHeader's error when the file could not be read, as
// opposed to not holding a message.
var ErrRead = errors.New("reading the message")

// Reads, read by tests, counts ReadHeader calls.
var Reads atomic.Int64

// Buffers recycles ReadHeader's buffers (*[]byte of ReadSize) across files.
var Buffers = sync.Pool{New: func() any { b := make([]byte, ReadSize); return &b }}

// ReadHeader reads and parses the header at the start of f, with at most
// maxEDKs encrypted data keys (0: envelope's default), returning its bytes
// too (in buf when they fit), so that a caller parses them from memory
// instead of reading the file again. Most headers take one pread.
func ReadHeader(f *os.File, buf []byte, maxEDKs int) ([]byte, *envelope.Header, error) {
	Reads.Add(1)
	opts := envelope.InspectOptions{MaxEncryptedDataKeys: maxEDKs}
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("%w: %w", ErrRead, err)
	}
	h, err := envelope.Inspect(bytes.NewReader(buf[:n]), opts)
	if errors.Is(err, envelope.ErrTruncated) && n == len(buf) {
		// A longer header: Inspect bounds it while reading the file.
		if h, err = envelope.Inspect(bufio.NewReader(io.NewSectionReader(f, 0, envelope.MaxHeaderLength)), opts); err != nil {
			return nil, nil, err
		}
		buf = make([]byte, h.HeaderLength)
		if _, err := f.ReadAt(buf, 0); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrRead, err)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return buf[:h.HeaderLength], h, nil
}

// InspectFile parses the header of the message at path, as ReadHeader
// reads it.
func InspectFile(path string) (*envelope.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := Buffers.Get().(*[]byte)
	defer Buffers.Put(buf)
	_, h, err := ReadHeader(f, *buf, 0)
	return h, err
}
