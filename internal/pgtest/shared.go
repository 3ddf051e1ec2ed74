package pgtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// ErrShared is returned by Stop, Kill, Start and Restart of the shared
// cluster: the tests sharing it cannot have it stopped under them.
var ErrShared = errors.New("pgtest: the shared cluster is never stopped or restarted; a test that does so takes a cluster of its own (Start)")

// shared is the test binary's shared cluster: started by the first
// Shared call, stopped and removed by Main once every test has ended.
var shared struct {
	mu     sync.Mutex
	inMain bool
	c      *Cluster
	err    error
}

// M is what a TestMain hands to Main: *testing.M, or a wrapper of it.
type M interface{ Run() int }

// Main runs m's tests, then stops and removes the shared cluster if a
// test started it, and returns m's exit code. A package whose tests call
// Shared has a TestMain that calls it:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.c.mu.Lock()
		shared.c.shared = false
		shared.c.mu.Unlock()
		if err := shared.c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
		shared.c = nil
	}
	return code
}

// Shared returns the cluster the tests of this test binary share,
// starting it on first use: tests that only need a database of their own
// take one from it (Database) instead of paying for a cluster each. It
// can be neither stopped nor restarted (ErrShared). It skips t (fails it
// under CI=true) when the PostgreSQL binaries are missing, like Start, and
// fails t unless TestMain runs the tests through Main, which removes the
// cluster at the end.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	skipIfMissing(t)
	c, err := SharedCluster()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SharedCluster is Shared for callers without a testing.TB (testscript
// commands): it returns the shared cluster, or why there is none.
func SharedCluster() (*Cluster, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		return nil, errors.New("pgtest: the shared cluster needs the package's TestMain to run the tests through pgtest.Main, which removes it")
	}
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = New()
		if shared.c != nil {
			shared.c.shared = true
		}
	}
	return shared.c, shared.err
}
