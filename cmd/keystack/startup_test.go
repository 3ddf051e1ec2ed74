package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartupInitialisesOnlyWhatItUses runs an empty-file encrypt with
// GODEBUG=inittrace=1, which makes the Go runtime report every package
// initialisation, in a binary built as `go install` builds it and in one
// built as `make build` does, and fails if a package that no such command
// uses was initialised: Prometheus and protobuf (the rotation daemon's
// metrics are written by hand), and, with make's build tag, urfave/cli's
// Markdown and man-page writers.
func TestStartupInitialisesOnlyWhatItUses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI twice")
	}
	never := []string{"github.com/prometheus/", "google.golang.org/protobuf/"}
	for _, b := range []struct {
		tags   string
		absent []string
	}{
		{"", never},
		{"urfave_cli_no_docs", append(never, "github.com/russross/blackfriday", "github.com/cpuguy83/go-md2man")},
	} {
		bin := buildCLITags(t, b.tags)
		inits := emptyEncryptInits(t, bin)
		if len(inits) < 10 {
			t.Fatalf("tags %q: only %d package initialisations reported; is GODEBUG=inittrace still honoured?", b.tags, len(inits))
		}
		for _, pkg := range inits {
			for _, bad := range b.absent {
				if strings.HasPrefix(pkg, bad) {
					t.Errorf("tags %q: an empty-file encrypt initialised %s", b.tags, pkg)
				}
			}
		}
	}
}

// buildCLITags builds cmd/keystack with the given build tags.
func buildCLITags(t *testing.T, tags string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keystack")
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %q: %v\n%s", tags, err, out)
	}
	return bin
}

// emptyEncryptInits encrypts an empty file on a new unsealed store and
// returns the packages the runtime reported initialising.
func emptyEncryptInits(t *testing.T, bin string) []string {
	t.Helper()
	dir := t.TempDir()
	env := append(os.Environ(), "KEYSTACK_HOME="+filepath.Join(dir, "home"))
	run := func(godebug string, args ...string) []byte {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, "GODEBUG="+godebug)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("keystack %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stderr.Bytes()
	}
	run("", "init", "--insecure-no-passphrase")
	run("", "key", "create", "k")
	empty, out := filepath.Join(dir, "empty"), filepath.Join(dir, "empty.ks")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	trace := run("inittrace=1", "encrypt", "-k", "k", "-i", empty, "-o", out)
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("the empty-file encrypt wrote no message: %v", err)
	}
	var pkgs []string
	for line := range strings.Lines(string(trace)) {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "init" && strings.HasPrefix(f[2], "@") {
			pkgs = append(pkgs, f[1])
		}
	}
	return pkgs
}
