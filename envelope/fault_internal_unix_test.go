//go:build unix

package envelope

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"unsafe"
)

type addrPanic uintptr

func (a addrPanic) Addr() uintptr { return uintptr(a) }

func TestFaultIn(t *testing.T) {
	b := make([]byte, 16)
	start := uintptr(unsafe.Pointer(&b[0]))
	for _, c := range []struct {
		r    any
		want bool
	}{
		{addrPanic(start), true},
		{addrPanic(start + 15), true},
		{addrPanic(start + 16), false},
		{addrPanic(start - 1), false},
		{"not a fault", false},
	} {
		if got := faultIn(c.r, b); got != c.want {
			t.Errorf("faultIn(%v) = %v, want %v", c.r, got, c.want)
		}
	}
	if faultIn(addrPanic(start), nil) {
		t.Error("faultIn with an empty buffer")
	}
}

// copyFaultSafe reports a fault in its source, and lets any other fault
// (here in its destination) panic on.
func TestCopyFaultSafe(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "m"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := os.Getpagesize()
	if err := f.Truncate(int64(2 * page)); err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	if err := f.Truncate(int64(page)); err != nil { // the second page now faults
		t.Fatal(err)
	}
	buf := make([]byte, page)
	if n, ok := copyFaultSafe(buf, m[page:]); ok || n != 0 {
		t.Fatalf("copy from a faulting source: %d, %v; want 0, false", n, ok)
	}
	if _, ok := copyFaultSafe(buf, m[:page]); !ok {
		t.Fatal("copy from a readable source failed")
	}
	defer func() {
		r := recover()
		if _, isErr := r.(runtime.Error); !isErr {
			t.Fatalf("recovered %v, want the destination's fault as a runtime error", r)
		}
	}()
	copyFaultSafe(m[page:], buf)
	t.Fatal("a fault in the destination was swallowed")
}
