package fsx

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReplace replaces a file's content, keeps its mode, syncs the new
// file before the rename and the directory after it, and leaves no
// temporary file.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m")
	if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	var calls []string
	defer func(f func(*os.File) error, d func(string) error) { syncFile, syncDir = f, d }(syncFile, syncDir)
	syncFile = func(f *os.File) error { calls = append(calls, "file"); return f.Sync() }
	syncDir = func(d string) error { calls = append(calls, "dir:"+d); return SyncPath(d) }
	err := Replace(p, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, ReplaceOptions{Prefix: ".x."})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("content %q, want new", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if want := []string{"file", "dir:" + dir}; !slices.Equal(calls, want) {
		t.Errorf("syncs %v, want %v", calls, want)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"m"}) {
		t.Errorf("directory holds %v, want only m", got)
	}
}

// TestReplaceFailure leaves the file as it was and removes the temporary
// file when fill fails; a step error (a simulated crash) leaves it.
func TestReplaceFailure(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Replace(p, func(w io.Writer) error { io.WriteString(w, "partial"); return boom }, ReplaceOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("content %q after a failed fill, want old", b)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"m"}) {
		t.Errorf("directory holds %v after a failed fill, want only m", got)
	}
	crash := func(s string) error {
		if s == "temp-written" {
			return boom
		}
		return nil
	}
	err = Replace(p, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, ReplaceOptions{Prefix: ".x.", Step: crash})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	got := entries(t, dir)
	if len(got) != 2 || !strings.HasPrefix(got[0], ".x.m") || !IsTemp(got[0]) {
		t.Errorf("directory holds %v after a crash, want m and its temporary file", got)
	}
	if err := Replace(dir, func(io.Writer) error { return nil }, ReplaceOptions{}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Replace of a directory: %v, want ErrNotRegular", err)
	}
}
