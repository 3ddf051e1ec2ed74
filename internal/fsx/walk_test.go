package fsx

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// walkTree builds root/{a, b/c, b/skip, link -> a} and returns root.
func walkTree(t *testing.T) string {
	root := t.TempDir()
	for _, p := range []string{"a", "b/c", "b/skip"} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	return root
}

func rels(t *testing.T, root string, paths []string) []string {
	var out []string
	for _, p := range paths {
		r, err := filepath.Rel(root, p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// WalkFiles yields regular files in lexical order, passes Skip's files
// and hands symbolic links to Other, never following them.
func TestWalkFilesRules(t *testing.T) {
	root := walkTree(t)
	var files, other []string
	w := Walk{
		Skip:  func(_ string, d fs.DirEntry) bool { return d.Name() == "skip" },
		Other: func(p string, _ fs.DirEntry) error { other = append(other, p); return nil },
	}
	err := WalkFiles(context.Background(), root, w, func(p string, _ fs.DirEntry) error {
		files = append(files, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rels(t, root, files); !slices.Equal(got, []string{"a", "b/c"}) {
		t.Fatalf("files %q, want [a b/c]", got)
	}
	if got := rels(t, root, other); !slices.Equal(got, []string{"link"}) {
		t.Fatalf("other %q, want [link]", got)
	}
}

// Errors stop the walk unless Err absorbs them; a done context stops it.
func TestWalkFilesErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	fn := func(string, fs.DirEntry) error { return nil }
	if err := WalkFiles(context.Background(), missing, Walk{}, fn); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing root: %v, want ErrNotExist", err)
	}
	var seen []string
	absorb := Walk{Err: func(p string, err error) error { seen = append(seen, p); return nil }}
	if err := WalkFiles(context.Background(), missing, absorb, fn); err != nil || len(seen) != 1 {
		t.Fatalf("absorbed error: %v, seen %q", err, seen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WalkFiles(ctx, walkTree(t), Walk{}, fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v, want context.Canceled", err)
	}
	stop := errors.New("stop")
	n := 0
	err := WalkFiles(context.Background(), walkTree(t), Walk{}, func(string, fs.DirEntry) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn error: %v after %d files, want stop after 1", err, n)
	}
}
