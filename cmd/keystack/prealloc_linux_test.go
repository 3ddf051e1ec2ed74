package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ext4Dir returns a new directory on ext4, where fsx preallocates: the
// test's temporary directory or, when that is another file system (tmpfs),
// one beside the test's working directory.
func ext4Dir(t *testing.T) string {
	t.Helper()
	for _, parent := range []string{os.TempDir(), "."} {
		var st unix.Statfs_t
		if unix.Statfs(parent, &st) != nil || st.Type != unix.EXT4_SUPER_MAGIC {
			continue
		}
		dir, err := os.MkdirTemp(parent, "prealloc-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no ext4 directory to test preallocation in")
	}
	t.Skip("no ext4 directory to test preallocation in")
	return ""
}

// extentFlags ORs the FIEMAP flags of path's extents (FS_IOC_FIEMAP; up to
// 64 extents, which a few MiB written at once fit in).
func extentFlags(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const header, extent, count = 32, 56, 64
	buf := make([]byte, header+extent*count)
	binary.NativeEndian.PutUint64(buf[8:], ^uint64(0)) // fm_length: all
	binary.NativeEndian.PutUint32(buf[24:], count)     // fm_extent_count
	const fsIocFiemap = 0xC020660B
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		t.Fatalf("FIEMAP: %v", errno)
	}
	var flags uint32
	for i := range binary.NativeEndian.Uint32(buf[20:]) { // fm_mapped_extents
		flags |= binary.NativeEndian.Uint32(buf[header+i*extent+40:])
	}
	return flags
}

const (
	extentDelalloc  = 0x4   // FIEMAP_EXTENT_DELALLOC: not allocated yet
	extentUnwritten = 0x800 // FIEMAP_EXTENT_UNWRITTEN: allocated by fallocate
)

// encrypt and decrypt --sync none give a large output its exact length of
// disk space up front: right after the command, its extents are allocated (unwritten:
// the data is still in the page cache) rather than delayed, and they end
// within the last block (a wrong prediction would leave space allocated
// past the end, or fall short).
func TestPreallocatesExactly(t *testing.T) {
	dir := ext4Dir(t)
	home := filepath.Join(t.TempDir(), "home")
	keystack(t, "--home", home, "init", "--insecure-no-passphrase")
	keystack(t, "--home", home, "key", "create", "k1")
	in := filepath.Join(dir, "in")
	data := bytes.Repeat([]byte("preallocate"), 500_000)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.ks")
	if err := runCLI(context.Background(), t, io.Discard, "--home", home, "encrypt", "-k", "k1", "--sync", "none", "-i", in, "-o", out); err != nil {
		t.Fatal(err)
	}
	checkPreallocated(t, out)
	if err := runCLI(context.Background(), t, io.Discard, "--home", home, "decrypt", "--sync", "none", "-i", out, "-o", in+".out"); err != nil {
		t.Fatal(err)
	}
	checkPreallocated(t, in+".out")
	if got, err := os.ReadFile(in + ".out"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip: %v", err)
	}
}

// checkPreallocated fails unless path's extents are allocated and
// unwritten, none delayed, and end within its last block.
func checkPreallocated(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	allocated := fi.Sys().(*syscall.Stat_t).Blocks * 512
	if allocated < fi.Size() || allocated-fi.Size() >= 4096 {
		t.Fatalf("%s: %d bytes, %d allocated: want the length rounded up to one block", path, fi.Size(), allocated)
	}
	if flags := extentFlags(t, path); flags&extentUnwritten == 0 || flags&extentDelalloc != 0 {
		t.Fatalf("%s: extent flags %#x: want allocated, unwritten extents and no delayed ones", path, flags)
	}
}
