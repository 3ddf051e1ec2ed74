package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A --sync batch tree larger than one batch is published in several
// flushes: every output appears, each --json line once, and nothing
// temporary is left.
func TestBatchTreeSeveralFlushes(t *testing.T) {
	defer func(n int) { batchFiles = n }(batchFiles)
	batchFiles = 2
	dir := t.TempDir()
	home, src, enc, dec := filepath.Join(dir, "home"), filepath.Join(dir, "src"), filepath.Join(dir, "enc"), filepath.Join(dir, "dec")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	const files = 5
	for i := range files {
		name := filepath.Join(src, fmt.Sprintf("f%d", i))
		if i%2 == 1 {
			name = filepath.Join(src, "sub", fmt.Sprintf("f%d", i))
		}
		if err := os.WriteFile(name, []byte(strings.Repeat("x", i)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		app := newApp()
		var stdout, stderr bytes.Buffer
		app.Writer, app.ErrWriter = &stdout, &stderr
		if code := runApp(app, append([]string{"keystack", "--home", home}, args...)); code != 0 {
			t.Fatalf("keystack %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
		}
		return stdout.String()
	}
	run("init", "--insecure-no-passphrase")
	run("key", "create", "k1")
	out := run("encrypt", "-k", "k1", "--sync", "batch", "--json", "--recursive", src, "--output-dir", enc)
	if n := strings.Count(out, `"operation": "encrypt"`); n != files {
		t.Fatalf("%d --json reports, want %d:\n%s", n, files, out)
	}
	run("decrypt", "--sync", "batch", "--recursive", enc, "--output-dir", dec)
	var got []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		if err == nil && !d.IsDir() && strings.HasPrefix(p, dec) {
			got = append(got, p)
		}
		return nil
	})
	if len(got) != files {
		t.Fatalf("decrypted %d files, want %d: %v", len(got), files, got)
	}
	for _, p := range got {
		want, _ := os.ReadFile(filepath.Join(src, strings.TrimPrefix(p, dec)))
		if have, _ := os.ReadFile(p); !bytes.Equal(have, want) {
			t.Errorf("%s differs from its source", p)
		}
	}
}
