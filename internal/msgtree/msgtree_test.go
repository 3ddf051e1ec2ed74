package msgtree

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// writeMessage writes a message under n raw AES keys with long names (n
// EDKs of about 250 bytes) to path.
func writeMessage(t *testing.T, path string, n int) []byte {
	t.Helper()
	var krs []envelope.Keyring
	for i := range n {
		kr, err := keyring.NewRawAES(keyring.ProviderLocal, strings.Repeat("k", 100)+strconv.Itoa(i)+"/v1", bytes.Repeat([]byte{byte(i)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		krs = append(krs, kr)
	}
	msg, err := envelope.EncryptBytes(context.Background(), []byte("body"), keyring.NewMulti(krs[0], krs[1:]...), envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestReadHeader: a header within one read and one longer than ReadSize
// are both read whole; a file that is not a message is not ErrRead, one
// that cannot be read is.
func TestReadHeader(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{1, 30} {
		path := filepath.Join(dir, strconv.Itoa(n))
		msg := writeMessage(t, path, n)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		raw, h, err := ReadHeader(f, make([]byte, ReadSize), 0)
		f.Close()
		if err != nil || len(h.EncryptedDataKeys) != n || !bytes.Equal(raw, msg[:h.HeaderLength]) {
			t.Fatalf("%d EDKs: header of %d bytes, %v", n, len(raw), err)
		}
		if n > 1 && h.HeaderLength <= ReadSize {
			t.Fatalf("%d EDKs make a header of %d bytes, not longer than ReadSize", n, h.HeaderLength)
		}
	}
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("not a message"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := InspectFile(notes); err == nil || errors.Is(err, ErrRead) {
		t.Fatalf("a text file: %v, want a parse error that is not ErrRead", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, _, err := ReadHeader(d, make([]byte, ReadSize), 0); !errors.Is(err, ErrRead) {
		t.Fatalf("a directory: %v, want ErrRead", err)
	}
}

// TestWalkPassesOverScratch: Walk gives fn the files and scratch the
// rewrap scratch files, which fn never sees.
func TestWalkPassesOverScratch(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.ks", ScratchPrefix + "a.ks.journal", "sub/b.ks"} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var files, scratch []string
	err := Walk(context.Background(), []string{dir}, func(p string) { scratch = append(scratch, filepath.Base(p)) },
		func(p string, _ fs.DirEntry) error { files = append(files, filepath.Base(p)); return nil })
	if err != nil || len(files) != 2 || files[0] != "a.ks" || files[1] != "b.ks" ||
		len(scratch) != 1 || scratch[0] != ScratchPrefix+"a.ks.journal" {
		t.Fatalf("files %q, scratch %q, %v", files, scratch, err)
	}
}
