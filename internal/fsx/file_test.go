package fsx

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
)

// entries lists dir, so tests can see that no temporary file is left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestCommitCreates(t *testing.T) {
	forEachTempKind(t, testCommitCreates)
}

func testCommitCreates(t *testing.T, named bool) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	f, err := Create(target, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("temp file %s has mode %v, want 0600", f.Name(), fi.Mode().Perm())
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("target visible before Commit: %v", err)
	}
	if got := entries(t, dir); named != (len(got) == 1) {
		t.Fatalf("named %v: while writing, dir holds %v", named, got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "hello" {
		t.Fatalf("target holds %q", got)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "out" {
		t.Fatalf("dir holds %v, want only out", got)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrDone) {
		t.Fatalf("Write after Commit: %v, want ErrDone", err)
	}
	if err := f.Commit(); !errors.Is(err, ErrDone) {
		t.Fatalf("second Commit: %v, want ErrDone", err)
	}
}

// forEachTempKind runs test with unnamed temporary files (where the
// system has them: on Linux they must work) and with named ones.
func forEachTempKind(t *testing.T, test func(t *testing.T, named bool)) {
	t.Run("unnamed", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("O_TMPFILE is Linux only")
		}
		test(t, false)
	})
	t.Run("named", func(t *testing.T) {
		noUnnamed = true
		t.Cleanup(func() { noUnnamed = false })
		test(t, true)
	})
}

// Commit fsyncs the file and its directory, and after NoSync neither,
// while the output still appears only whole and the temporary file goes.
func TestCommitSyncs(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		var syncs []string
		syncFile = func(f *os.File) error { syncs = append(syncs, filepath.Base(f.Name())); return f.Sync() }
		syncDir = func(p string) error { syncs = append(syncs, filepath.Base(p)); return SyncPath(p) }
		t.Cleanup(func() { syncFile, syncDir = (*os.File).Sync, SyncPath })
		dir := t.TempDir()
		f, err := Create(filepath.Join(dir, "out"), false)
		if err != nil {
			t.Fatal(err)
		}
		if noSync {
			f.NoSync()
		}
		tmp := filepath.Base(f.Name())
		if _, err := f.Write(make([]byte, 3*writebackChunk)); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		want := []string{tmp, filepath.Base(dir)}
		if noSync {
			want = nil
		}
		if !slices.Equal(syncs, want) {
			t.Errorf("NoSync %v: fsynced %q, want %q", noSync, syncs, want)
		}
		if got := entries(t, dir); len(got) != 1 || got[0] != "out" {
			t.Errorf("NoSync %v: dir holds %v, want only out", noSync, got)
		}
	}
}

func TestNoOverwrite(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	if err := os.WriteFile(target, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(target, false); !errors.Is(err, ErrExist) {
		t.Fatalf("Create over existing file: %v, want ErrExist", err)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Fatalf("dir holds %v", got)
	}
}

// Only regular files are ever replaced: a directory, a symbolic link (to
// a file or dangling), a FIFO or a socket is refused even with overwrite,
// and stays as it was.
func TestNeverReplacesNonRegular(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	os.WriteFile(p("file"), []byte("kept"), 0o600)
	os.Mkdir(p("dir"), 0o700)
	os.Symlink("file", p("link"))
	os.Symlink("missing", p("dangling"))
	if err := syscall.Mkfifo(p("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", p("sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, name := range []string{"dir", "link", "dangling", "fifo", "sock"} {
		for _, overwrite := range []bool{false, true} {
			before, _ := os.Lstat(p(name))
			if _, err := Create(p(name), overwrite); !errors.Is(err, ErrNotRegular) {
				t.Errorf("Create(%s, overwrite %v): %v, want ErrNotRegular", name, overwrite, err)
			}
			if after, err := os.Lstat(p(name)); err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
				t.Errorf("%s changed: %v", name, err)
			}
		}
	}
	if got, _ := os.ReadFile(p("file")); string(got) != "kept" {
		t.Errorf("the link's target holds %q", got)
	}
	if got := entries(t, dir); len(got) != 6 {
		t.Errorf("dir holds %v", got)
	}
}

func TestMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, target := range []string{filepath.Join(dir, "nodir", "out"), filepath.Join(dir, "file", "out")} {
		os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
		if _, err := Create(target, true); !errors.Is(err, ErrNoDir) {
			t.Errorf("Create(%s): %v, want ErrNoDir", target, err)
		}
	}
}

// TestRaceKeepsFile: a file that appears after Create is not replaced.
func TestRaceKeepsFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	f, err := Create(target, false)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new"))
	if err := os.WriteFile(target, []byte("raced"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); !errors.Is(err, ErrExist) {
		t.Fatalf("Commit over a raced file: %v, want ErrExist", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "raced" {
		t.Fatalf("raced file now holds %q", got)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Fatalf("dir holds %v, want only out", got)
	}
}

func TestOverwrite(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	os.WriteFile(target, []byte("original"), 0o644)
	f, err := Create(target, true)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("replaced"))
	if got, _ := os.ReadFile(target); string(got) != "original" {
		t.Fatalf("target changed before Commit: %q", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "replaced" {
		t.Fatalf("target holds %q", got)
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Fatalf("dir holds %v, want only out", got)
	}
}

func TestAbortAndRemovePending(t *testing.T) {
	forEachTempKind(t, testAbortAndRemovePending)
}

func testAbortAndRemovePending(t *testing.T, named bool) {
	dir := t.TempDir()
	a, err := Create(filepath.Join(dir, "a"), false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(filepath.Join(dir, "b"), false)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("partial"))
	if err := a.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := a.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	want := []string(nil)
	if named {
		want = []string{filepath.Base(b.Name())}
	}
	if got := entries(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after Abort dir holds %v, want %v", got, want)
	}
	RemovePending()
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("after RemovePending dir holds %v", got)
	}
	b.Abort()
}

// A file several write-back chunks long commits whole: early write-back
// changes when pages reach the disk, never what the file holds.
func TestLargeFileWithEarlyWriteback(t *testing.T) {
	target := filepath.Join(t.TempDir(), "big")
	f, err := Create(target, false)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 0, 3*writebackChunk+12345)
	chunk := make([]byte, 1<<20+7) // odd-sized writes straddle chunk edges
	for i := 0; len(want) < cap(want); i++ {
		for j := range chunk {
			chunk[j] = byte(i + j)
		}
		p := chunk[:min(len(chunk), cap(want)-len(want))]
		if _, err := f.Write(p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p...)
	}
	if f.flushed == 0 {
		t.Fatal("no early write-back was started")
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("committed file differs (%d bytes, want %d): %v", len(got), len(want), err)
	}
}

// A batch publishes nothing before Flush, then every queued file whole;
// a target that appeared meanwhile is kept and reported, and the others
// are still published. No temporary file is left.
func TestBatchPublishesOnFlush(t *testing.T) {
	dir := t.TempDir()
	b := NewBatch()
	defer b.Close()
	for _, name := range []string{"a", "b", "c"} {
		f, err := b.Create(filepath.Join(dir, name), false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("data " + name)); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := f.Abort(); err != nil { // the CLI defers Abort
			t.Fatal(err)
		}
	}
	if b.Len() != 3 {
		t.Fatalf("Len %d, want 3", b.Len())
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s visible before Flush: %v", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	published, err := b.Flush()
	if !errors.Is(err, ErrExist) {
		t.Fatalf("Flush: %v, want ErrExist for b", err)
	}
	if want := []string{filepath.Join(dir, "a"), filepath.Join(dir, "c")}; !slices.Equal(published, want) {
		t.Fatalf("published %q, want %q", published, want)
	}
	for name, want := range map[string]string{"a": "data a", "b": "theirs", "c": "data c"} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != want {
			t.Errorf("%s holds %q, want %q", name, got, want)
		}
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("dir holds %v", got)
	}
	if published, err := b.Flush(); published != nil || err != nil {
		t.Fatalf("empty Flush: %v, %v", published, err)
	}
}

// Queued files are still pending: the signal path removes them, and so
// does Close.
func TestBatchQueuedFilesAreRemovable(t *testing.T) {
	dir := t.TempDir()
	b := NewBatch()
	for _, name := range []string{"a", "b"} {
		f, err := b.Create(filepath.Join(dir, name), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if name == "a" {
			RemovePending()
			if got := entries(t, dir); len(got) != 0 {
				t.Fatalf("after RemovePending dir holds %v", got)
			}
		}
	}
	b.Close()
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("after Close dir holds %v", got)
	}
}

// Flush makes the data durable before any target names it, and the new
// names durable after.
func TestBatchFlushOrder(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	var calls []string
	syncAll = func(fs *Filesystems, files []string) error {
		_, err := os.Stat(target)
		calls = append(calls, fmt.Sprintf("%d files, target exists: %v", len(files), err == nil))
		return fs.Sync(files)
	}
	t.Cleanup(func() { syncAll = (*Filesystems).Sync })
	b := NewBatch()
	defer b.Close()
	f, err := b.Create(target, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{"1 files, target exists: false", "1 files, target exists: true"}
	if !slices.Equal(calls, want) {
		t.Fatalf("flushes %q, want %q", calls, want)
	}
}
