package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStartupInitialisesOnlyWhatItUses runs an empty-file encrypt with
// GODEBUG=inittrace=1, which makes the Go runtime report every package
// initialisation, in a binary built as `go install` builds it and in the
// two `make build` builds, and fails if a package that no such command
// uses was initialised: Prometheus and protobuf (the rotation daemon's
// metrics are written by hand), with make's build tag urfave/cli's
// Markdown and man-page writers, and in the lite build the AWS SDK's
// clients and configuration. keystack's own packages must keep their
// package-level state small (compiled regexps, tables): each may allocate
// at most ownInitBytes while initialising.
func TestStartupInitialisesOnlyWhatItUses(t *testing.T) {
	t.Parallel() // child processes only
	if testing.Short() {
		t.Skip("builds the CLI three times")
	}
	never := []string{"github.com/prometheus/", "google.golang.org/protobuf/"}
	for _, b := range []struct {
		tags   string
		absent []string
	}{
		{"", never},
		{makeTags, append(never, "github.com/russross/blackfriday", "github.com/cpuguy83/go-md2man")},
		{liteTags, append(never, "github.com/russross/blackfriday", "github.com/cpuguy83/go-md2man",
			"github.com/aws/aws-sdk-go-v2/service/", "github.com/aws/aws-sdk-go-v2/config")},
	} {
		bin := buildCLITags(t, b.tags)
		inits := emptyEncryptInits(t, bin)
		if len(inits) < 10 {
			t.Fatalf("tags %q: only %d package initialisations reported; is GODEBUG=inittrace still honoured?", b.tags, len(inits))
		}
		for _, in := range inits {
			for _, bad := range b.absent {
				if strings.HasPrefix(in.pkg, bad) {
					t.Errorf("tags %q: an empty-file encrypt initialised %s", b.tags, in.pkg)
				}
			}
			if strings.HasPrefix(in.pkg, "github.com/keystack/keystack/") && in.bytes > ownInitBytes {
				t.Errorf("tags %q: %s allocated %d bytes initialising (at most %d): make its package-level state lazy", b.tags, in.pkg, in.bytes, ownInitBytes)
			}
		}
	}
}

// ownInitBytes bounds what one of keystack's packages may allocate in its
// initialisation; the largest measured is policy's, about 3 KB.
const ownInitBytes = 32 << 10

// pkgInit is one package initialisation GODEBUG=inittrace reported.
type pkgInit struct {
	pkg   string
	bytes int
}

// emptyEncryptInits encrypts an empty file on a new unsealed store and
// returns the package initialisations the runtime reported.
func emptyEncryptInits(t *testing.T, bin string) []pkgInit {
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
	// init PKG @T ms, C ms clock, B bytes, N allocs
	var inits []pkgInit
	for line := range strings.Lines(string(trace)) {
		f := strings.Fields(line)
		if len(f) < 10 || f[0] != "init" || !strings.HasPrefix(f[2], "@") || f[8] != "bytes," {
			continue
		}
		n, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("inittrace line %q: %v", line, err)
		}
		inits = append(inits, pkgInit{pkg: f[1], bytes: n})
	}
	return inits
}
