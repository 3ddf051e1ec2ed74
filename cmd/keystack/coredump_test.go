package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// procState is the "procstate" test program: it goes through start, as
// main does, with a command that succeeds, then prints what the process
// may dump: its RLIMIT_CORE and PR_GET_DUMPABLE.
func procState() {
	code := start([]string{"keystack", "help"})
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dumpable, err := dumpableState()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("exit=%d core=%d/%d dumpable=%d\n", code, lim.Cur, lim.Max, dumpable)
	os.Exit(0)
}

// cmdCoreLimit runs "corelimit keystack args...": it starts the command,
// with core dumps allowed up to the hard limit and a stdin that stalls,
// waits until it reads, and checks in /proc/PID/limits that the running
// process may write no core file.
func cmdCoreLimit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: corelimit prog args...")
	}
	path, err := exec.LookPath(args[0])
	ts.Check(err)
	sh := `ulimit -S -c "$(ulimit -H -c)" && exec "$@"`
	cmd := exec.Command("sh", append([]string{"-c", sh, "sh", path}, args[1:]...)...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = append(os.Environ(), "KEYSTACK_HOME="+ts.Getenv("KEYSTACK_HOME"), "TEST_TTY="+ts.Getenv("TEST_TTY"))
	pr, pw, err := os.Pipe()
	ts.Check(err)
	cmd.Stdin = pr
	ts.Check(cmd.Start())
	pr.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait(); pw.Close() }()
	waitForReads(ts, pw, 256<<10)
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
	ts.Check(err)
	for _, line := range strings.Split(string(limits), "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "Max core file size") && len(f) >= 6 {
			if f[4] != "0" || f[5] != "0" {
				ts.Fatalf("running %s may dump core: %s", args[0], line)
			}
			return
		}
	}
	ts.Fatalf("no core limit in /proc/PID/limits:\n%s", limits)
}
