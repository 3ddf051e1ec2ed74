package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keystack/keystack/internal/pgtest"
)

// builtCLIs holds the CLI binaries the tests built, one per set of build
// tags, so that tests needing the same binary build it once. Its directory
// is removed when the tests end (cleanupM).
var builtCLIs struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
}

// buildCLITags returns cmd/keystack built with the given build tags, as
// users build it (no test hooks), building it on first use.
func buildCLITags(t *testing.T, tags string) string {
	t.Helper()
	builtCLIs.mu.Lock()
	defer builtCLIs.mu.Unlock()
	if bin, ok := builtCLIs.bins[tags]; ok {
		return bin
	}
	if builtCLIs.dir == "" {
		dir, err := os.MkdirTemp("", "keystack-cli-")
		if err != nil {
			t.Fatal(err)
		}
		builtCLIs.dir, builtCLIs.bins = dir, map[string]string{}
	}
	bin := filepath.Join(builtCLIs.dir, "keystack-"+fmt.Sprint(len(builtCLIs.bins)))
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %q: %v\n%s", tags, err, out)
	}
	builtCLIs.bins[tags] = bin
	return bin
}

// cleanupM runs the tests, then removes the binaries they built and the
// PostgreSQL cluster they shared (pgtest.Main).
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := pgtest.Main(c.m)
	if builtCLIs.dir != "" {
		os.RemoveAll(builtCLIs.dir)
	}
	return code
}
