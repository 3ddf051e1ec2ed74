package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encrypt and decrypt arm the interrupt watch before anything an interrupt
// must clean up or may wait on, and only then; every other command arms it
// before it runs.
func TestInterruptArming(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	small := filepath.Join(dir, "small")
	large := filepath.Join(dir, "large")
	if err := os.WriteFile(small, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(large, make([]byte, lazyInterruptMax+1), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) bool {
		t.Helper()
		app := newApp()
		var stdout, stderr bytes.Buffer
		app.Reader, app.Writer, app.ErrWriter = strings.NewReader(stdin), &stdout, &stderr
		if code := runApp(app, append([]string{"keystack", "--home", home}, args...)); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
		return app.Metadata[interruptsKey].(*interruptWatch).armed.Load()
	}
	if !run("", "init", "--insecure-no-passphrase") || !run("", "key", "create", "k1") {
		t.Fatal("init or key create ran without the watch")
	}
	run("", "encrypt", "-k", "k1", "-i", small, "-o", filepath.Join(dir, "small.ks"))
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"encrypt", "-k", "k1", "-i", small, "-o", "-"}, false},
		{[]string{"decrypt", "-i", filepath.Join(dir, "small.ks"), "-o", "-"}, false},
		{[]string{"encrypt", "-k", "k1", "-i", large, "-o", "-"}, true},                     // takes a while
		{[]string{"encrypt", "-k", "k1", "-o", "-"}, true},                                  // stdin
		{[]string{"encrypt", "-k", "k1", "-i", small, "-o", filepath.Join(dir, "o")}, true}, // a temporary file
		{[]string{"decrypt", "-i", filepath.Join(dir, "small.ks"), "-o", "-", "--buffer"}, true},
		{[]string{"encrypt", "-k", "k1", "-i", small, "-o", "-", "--metadata-output", filepath.Join(dir, "m")}, true},
		{[]string{"inspect", filepath.Join(dir, "small.ks")}, true},
	}
	for _, tc := range tests {
		if got := run("data", tc.args...); got != tc.want {
			t.Errorf("%q: armed %v, want %v", tc.args, got, tc.want)
		}
	}
}
