//go:build unix

package envelope_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// mapTruncated maps size bytes of a file, then truncates the file to keep
// bytes: reading the mapping past keep raises SIGBUS, as when a file being
// encrypted from a mapping shrinks under the encryptor.
func mapTruncated(t *testing.T, size, keep int) []byte {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(pattern(size)); err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(m) })
	if err := f.Truncate(int64(keep)); err != nil {
		t.Fatal(err)
	}
	return m
}

// A mapped plaintext that faults fails the message with ErrPlaintextFault
// on every path that reads it: frames sealed in place by the workers or
// inline, and the tail Write copies on the caller's goroutine.
func TestWriteFromFaultingMapping(t *testing.T) {
	page := os.Getpagesize()
	const size = 4 << 20
	cases := []struct {
		name      string
		keep      int
		from, to  int // the slice of the mapping written
		conc      int
		wantFault bool
	}{
		{"workers-borrowed", 1 << 20, 0, size, 4, true},
		{"inline-borrowed", 1 << 20, 0, size, 1, true},
		{"first-frame", 0, 0, size, 4, true},
		{"copied-tail", size - 64<<10, size - 128<<10, size, 4, true},
		{"small-copy", page, page, 2 * page, 4, true},
		{"untouched-region", 1 << 20, 0, 1 << 20, 4, false},
	}
	kr := aesKeyring(t, "fault", 1)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mapTruncated(t, size, c.keep)
			w, err := envelope.Encrypt(bg, io.Discard, kr, envelope.EncryptOptions{Concurrency: c.conc})
			if err != nil {
				t.Fatal(err)
			}
			_, werr := w.Write(m[c.from:c.to])
			cerr := w.Close()
			if !c.wantFault {
				if werr != nil || cerr != nil {
					t.Fatalf("Write: %v, Close: %v; want both nil", werr, cerr)
				}
				return
			}
			if !errors.Is(werr, envelope.ErrPlaintextFault) {
				t.Fatalf("Write: %v, want ErrPlaintextFault", werr)
			}
			if !errors.Is(cerr, envelope.ErrPlaintextFault) {
				t.Fatalf("Close: %v, want the sticky ErrPlaintextFault", cerr)
			}
		})
	}
}
