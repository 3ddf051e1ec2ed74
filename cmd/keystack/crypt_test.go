package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// encrypt refuses to print binary ciphertext on a terminal unless -o -
// asks for it, before it opens the keystore.
func TestEncryptRefusesTerminal(t *testing.T) {
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	var stdout bytes.Buffer
	isTerminal = func(w io.Writer) bool { return w == &stdout }
	home := filepath.Join(t.TempDir(), "home") // no keystore: it must not be needed
	run := func(args ...string) (int, string) {
		app := newApp()
		var stderr bytes.Buffer
		app.Reader, app.Writer, app.ErrWriter = strings.NewReader("secret"), &stdout, &stderr
		return runApp(app, append([]string{"keystack", "--home", home}, args...)), stderr.String()
	}
	code, stderr := run("encrypt", "-k", "k1")
	if code != exitUsage || !strings.Contains(stderr, "refusing to write binary ciphertext to a terminal") || stdout.Len() != 0 {
		t.Fatalf("exit %d, stderr %q, %d bytes out; want a usage error and nothing written", code, stderr, stdout.Len())
	}
	// With -o -, or base64 output, the check is skipped: the command goes
	// on to the keystore, which does not exist here.
	for _, args := range [][]string{{"-o", "-"}, {"--encode"}} {
		code, stderr := run(append([]string{"encrypt", "-k", "k1"}, args...)...)
		if code == exitUsage || strings.Contains(stderr, "refusing") {
			t.Fatalf("%v: exit %d, stderr %q; want no terminal refusal", args, code, stderr)
		}
	}
}
