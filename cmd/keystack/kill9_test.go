package main

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// tempOfPid matches a temporary file named for its owner process (see
// fsx.CreateTemp); group 1 is the pid.
var tempOfPid = regexp.MustCompile(`^\..*\.tmp-([0-9]+)-[0-9a-f]{8}$`)

// cmdKill9 runs "kill9 N prog args...": it runs prog three times to time it, then
// N times starts it and kills it with SIGKILL after a random delay of up
// to that time. After each run the script's work directory (outputs, the
// keystore, $TMPDIR) may hold no temporary file except ones named for a
// killed process, which the next run writing into that directory sweeps
// (the script checks that at its end); a run that finished must leave none.
func cmdKill9(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: kill9 N prog args...")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		ts.Fatalf("kill9: bad N %q", args[0])
	}
	// The fastest of three runs bounds the delays, so that most kills
	// land mid-way even when the first run was slow (cold caches).
	took := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		ts.Check(kill9Run(ts, args[1:], -1).Wait())
		took = min(took, time.Since(start))
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	dead := killedPids(ts)
	killed, left := 0, 0
	for range n {
		cmd := kill9Run(ts, args[1:], time.Duration(rng.Int64N(int64(took))))
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
			deadMu.Lock()
			dead[strconv.Itoa(cmd.Process.Pid)] = true
			deadMu.Unlock()
		} else if err != nil {
			ts.Fatalf("kill9: %s failed before the kill: %v", args[1], err)
		}
		left = max(left, checkLeftovers(ts, dead))
	}
	ts.Logf("kill9: seed %d, one run %v, killed %d of %d runs mid-way; at most %d killed runs' temporary files seen at once",
		seed, took, killed, n, left)
	if killed == 0 {
		ts.Fatalf("kill9: none of %d runs was killed mid-way", n)
	}
}

// kill9Run starts args[0] with args[1:] and, unless after < 0, kills it
// with SIGKILL after that long.
func kill9Run(ts *testscript.TestScript, args []string, after time.Duration) *exec.Cmd {
	path, err := exec.LookPath(args[0])
	ts.Check(err)
	cmd := exec.Command(path, args[1:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = append(os.Environ(), "KEYSTACK_HOME="+ts.Getenv("KEYSTACK_HOME"),
		"TEST_TTY="+ts.Getenv("TEST_TTY"), "TMPDIR="+ts.Getenv("TMPDIR"))
	ts.Check(cmd.Start())
	if after >= 0 {
		time.Sleep(after)
		cmd.Process.Signal(syscall.SIGKILL)
	}
	return cmd
}

// killedByDir holds, per script work directory, the pids kill9 killed: their
// temporary files stay until the next run in their directory.
var (
	deadMu      sync.Mutex
	killedByDir = map[string]map[string]bool{}
)

func killedPids(ts *testscript.TestScript) map[string]bool {
	deadMu.Lock()
	defer deadMu.Unlock()
	dir := ts.MkAbs(".")
	if killedByDir[dir] == nil {
		killedByDir[dir] = map[string]bool{}
	}
	return killedByDir[dir]
}

// checkLeftovers fails if the work directory holds a temporary file that
// is not named for one of the dead processes; it returns how many are.
func checkLeftovers(ts *testscript.TestScript, dead map[string]bool) int {
	deadMu.Lock()
	defer deadMu.Unlock()
	n := 0
	err := filepath.WalkDir(ts.MkAbs("."), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		m := tempOfPid.FindStringSubmatch(name)
		switch {
		case m != nil && dead[m[1]]:
			n++
		case m != nil || strings.Contains(name, ".tmp-") || strings.Contains(name, "keystack-scratch"):
			ts.Fatalf("kill9: left behind: %s", p)
		}
		return nil
	})
	ts.Check(err)
	return n
}
