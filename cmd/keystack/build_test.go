package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/keystack/keystack/internal/pgtest"
)

// makeTags are the build tags of `make build`'s bin/keystack-full
// (urfave/cli without its Markdown and man-page writers), liteTags those
// of its bin/keystack; "" builds as `go install` does.
const (
	makeTags = "urfave_cli_no_docs"
	liteTags = makeTags + " keystack_lite"
)

// cliNames are the file names of the builds make build names: side by side
// in one directory, the lite build hands off to keystack-full as installed.
// Other builds are named keystack-N.
var cliNames = map[string]string{liteTags: "keystack", makeTags: fullName}

// builtCLIs holds the CLI binaries the tests build, one per set of build
// tags, so that tests needing the same binary build it once. Its directory
// is removed when the tests end (cleanupM).
var builtCLIs struct {
	mu     sync.Mutex
	dir    string
	builds map[string]*cliBuild
}

// cliBuild is one build of the CLI; done is closed when it has finished.
type cliBuild struct {
	done chan struct{}
	bin  string
	err  error
}

// startCLIBuild starts building cmd/keystack with the given build tags, as
// users build it (no test hooks), unless that build was started before,
// and returns it.
func startCLIBuild(tags string) *cliBuild {
	builtCLIs.mu.Lock()
	defer builtCLIs.mu.Unlock()
	if b, ok := builtCLIs.builds[tags]; ok {
		return b
	}
	b := &cliBuild{done: make(chan struct{})}
	if builtCLIs.builds == nil {
		builtCLIs.builds = map[string]*cliBuild{}
	}
	builtCLIs.builds[tags] = b
	if builtCLIs.dir == "" {
		builtCLIs.dir, b.err = os.MkdirTemp("", "keystack-cli-")
	}
	if b.err != nil {
		close(b.done)
		return b
	}
	name, ok := cliNames[tags]
	if !ok {
		name = "keystack-" + fmt.Sprint(len(builtCLIs.builds))
	}
	b.bin = filepath.Join(builtCLIs.dir, name)
	go func() {
		defer close(b.done)
		cmd := exec.Command("go", "build", "-tags", tags, "-o", b.bin, ".")
		if tags == liteTags {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build: static
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build -tags %q: %v\n%s", tags, err, out)
		}
	}()
	return b
}

// buildCLITags returns cmd/keystack built with the given build tags, as
// users build it (no test hooks), waiting for the build (startCLIBuild).
func buildCLITags(t *testing.T, tags string) string {
	t.Helper()
	b := startCLIBuild(tags)
	<-b.done
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// buildLitePair returns make build's bin/keystack (the lite build), with
// its keystack-full beside it, building both once (startCLIBuild).
func buildLitePair(t *testing.T) string {
	t.Helper()
	startCLIBuild(makeTags)
	lite := buildCLITags(t, liteTags)
	buildCLITags(t, makeTags)
	return lite
}

// cleanupM runs the tests, then removes the binaries they built and the
// PostgreSQL cluster they shared (pgtest.Main). The parallel tests mostly
// wait on the processes they start (servers coming up, timeouts, leases,
// SoftHSM and PostgreSQL), so without -parallel twice as many run at once
// as there are CPUs. When every test runs (no -run), it builds the CLI
// binaries meanwhile: the tests that need them run last, in parallel, and
// would otherwise wait for the builds there.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	if !flag.Parsed() {
		flag.Parse()
	}
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		flag.Set("test.parallel", strconv.Itoa(2*runtime.GOMAXPROCS(0)))
	}
	if flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.list").Value.String() == "" {
		startCLIBuild("")
		if !testing.Short() {
			startCLIBuild(makeTags)
			startCLIBuild(liteTags)
		}
	}
	code := pgtest.Main(c.m)
	builtCLIs.mu.Lock()
	defer builtCLIs.mu.Unlock()
	for _, b := range builtCLIs.builds {
		<-b.done
	}
	if builtCLIs.dir != "" {
		os.RemoveAll(builtCLIs.dir)
	}
	return code
}
