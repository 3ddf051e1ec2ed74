package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The bar draws on its first move and on reaching the total, otherwise at
// most every progressInterval, and finish erases the line it drew.
func TestProgressBarThrottlesAndErases(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(1000, 0)
	b := newProgressBar(&out, "encrypting", 4<<20, true)
	b.now = func() time.Time { return clock }
	b.start = clock
	b.add(1 << 20)
	clock = clock.Add(progressInterval / 2)
	b.add(1 << 20) // too soon: not drawn
	clock = clock.Add(progressInterval / 2)
	b.add(1 << 20)
	b.add(1 << 20) // the total: drawn at once
	b.add(0)       // reads after the total, as parallel readers make: not drawn again
	b.add(4 << 10)
	b.finish()
	b.finish() // nothing left to erase
	frames := strings.Split(out.String(), "\r")[1:]
	want := []string{
		"encrypting  25% [======>                 ] 1.0 MiB / 4.0 MiB\x1b[K",
		"encrypting  75% [==================>     ] 3.0 MiB / 4.0 MiB, 30.0 MiB/s\x1b[K",
		"encrypting 100% [========================] 4.0 MiB / 4.0 MiB, 40.0 MiB/s\x1b[K",
		"\x1b[K",
	}
	if strings.Join(frames, "|") != strings.Join(want, "|") {
		t.Fatalf("frames:\n%q\nwant:\n%q", frames, want)
	}
	files := newProgressBar(&out, "rewrapping", 3, false)
	out.Reset()
	files.set(1)
	if got := out.String(); got != "\rrewrapping  33% [========>               ] 1/3\x1b[K" {
		t.Fatalf("count bar drew %q", got)
	}
}

// A large file encrypted and decrypted with stderr on a terminal shows a
// bar that counts every byte, erased at the end, and the file is still
// read at offsets (the parallel path), since the bar keeps it an
// io.ReaderAt. With -q there is no bar.
func TestProgressThroughCLI(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	keystack(t, "--home", home, "init", "--insecure-no-passphrase")
	keystack(t, "--home", home, "key", "create", "k1")
	in := filepath.Join(dir, "in")
	data := bytes.Repeat([]byte("progress"), (progressThreshold+3)/8+1)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	var stderr bytes.Buffer
	isTerminal = func(w io.Writer) bool { return w == &stderr }
	if src := io.Reader(&progressReader{mustOpen(t, in), newProgressBar(io.Discard, "", 1, true)}); !isReaderAt(src) {
		t.Fatal("the bar hides the file's ReadAt: encryption would read it sequentially")
	}
	for _, step := range []struct{ verb, in, out string }{
		{"encrypt", in, in + ".ks"}, {"decrypt", in + ".ks", in + ".out"},
	} {
		stderr.Reset()
		args := []string{"--home", home, step.verb, "-i", step.in, "-o", step.out}
		if step.verb == "encrypt" {
			args = append(args, "-k", "k1")
		}
		if err := runCLI(context.Background(), t, &stderr, args...); err != nil {
			t.Fatalf("%s: %v\n%s", step.verb, err, stderr.String())
		}
		got := stderr.String()
		last := strings.LastIndex(got, "\r"+step.verb+"ing 100% ")
		if !strings.HasPrefix(got, "\r"+step.verb+"ing ") || last < 0 || !strings.HasSuffix(got, "\r\x1b[K") {
			t.Fatalf("%s: stderr %q; want bar frames up to 100%%, then the line erased", step.verb, got)
		}
		stderr.Reset()
		if err := runCLI(context.Background(), t, &stderr, append(args, "-q", "--force")...); err != nil || stderr.Len() != 0 {
			t.Fatalf("%s -q: %v, stderr %q; want no bar", step.verb, err, stderr.String())
		}
	}
	if out, err := os.ReadFile(in + ".out"); err != nil || !bytes.Equal(out, data) {
		t.Fatalf("round trip: %v", err)
	}
	// A tree counts files, then the line is erased before the summary.
	tree := filepath.Join(dir, "tree")
	for _, name := range []string{"a", "b", "c"} {
		if err := os.MkdirAll(tree, 0o700); err != nil || os.WriteFile(filepath.Join(tree, name), data[:10], 0o600) != nil {
			t.Fatal(err)
		}
	}
	stderr.Reset()
	err := runCLI(context.Background(), t, &stderr, "--home", home, "encrypt", "-k", "k1", "--recursive", tree, "--output-dir", filepath.Join(dir, "enc"))
	if got := stderr.String(); err != nil || !strings.HasPrefix(got, "\rencrypting  33% [") || !strings.Contains(got, " 3/3\x1b[K\r\x1b[Kkeystack: encrypted 3 files") {
		t.Fatalf("tree: %v, stderr %q", err, got)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func isReaderAt(r io.Reader) bool {
	_, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	})
	return ok
}
