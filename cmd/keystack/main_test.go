package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keystack/keystack/internal/testhook"
)

func TestMain(m *testing.M) {
	if out := os.Getenv(rssChildEnv); out != "" {
		os.Exit(rssWrap(out, os.Args[1:]))
	}
	// Stores made by the tests record cheap KDF costs; the defaults are
	// measured by keystore's BenchmarkUnlockDefaultKDF and a test below
	// checks that a release binary never uses these.
	testhook.CheapKDF = true
	testscript.Main(cleanupM{m}, map[string]func(){
		"keystack": func() {
			// Scripts prompt only on the pty of "ttyin", never on the
			// terminal of whoever runs go test.
			ttyPath = os.Getenv("TEST_TTY")
			// interrupt.txtar signals commands blocked in a read of a pipe,
			// which end only when the grace runs out.
			interruptGrace = 250 * time.Millisecond
			killAfterFiles(os.Getenv("TEST_KILL_AFTER_FILES"))
			os.Exit(start(os.Args))
		},
		"procstate": procState,
	})
}

// toolCondition is [tool:NAME]: NAME is on the PATH. Under CI=true a
// missing tool fails the script instead of skipping its part.
func toolCondition(name string) (bool, error) {
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			return false, fmt.Errorf("CI=true but %s is not installed", name)
		}
		return false, nil
	}
	return true, nil
}

// killAfterFiles makes the process kill itself with SIGKILL once n files
// of a run are complete: a crash in the middle of a tree.
func killAfterFiles(n string) {
	limit, err := strconv.Atoi(n)
	if err != nil {
		return
	}
	done := 0
	fileDoneHook = func() {
		if done++; done == limit {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

// TestScripts runs testdata/script/*.txtar against the real binary: each
// "keystack" line runs this test binary as the keystack command.
func TestScripts(t *testing.T) {
	t.Parallel() // scripts run the CLI as child processes: no shared state
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		WorkdirRoot:         scriptWorkRoot(t),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("KEYSTACK_HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("TEST_TTY", filepath.Join(env.WorkDir, "no-tty"))
			return nil
		},
		Cmds: withCmds(pgScriptCmds, withCmds(serverScriptCmds, withCmds(auditScriptCmds, map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":   cmdExitCode,
			"within":     cmdWithin,
			"genfile":    cmdGenFile,
			"flipbyte":   cmdFlipByte,
			"notemp":     cmdNoTemp,
			"cutfile":    cmdCutFile,
			"interrupt":  cmdInterrupt,
			"gentree":    cmdGenTree,
			"killrewrap": cmdKillRewrap,
			"kms":        cmdKMS,
			"softhsm":    cmdSoftHSM,
			"specmsg":    cmdSpecMsg,
			"legacymsg":  cmdLegacyMsg,
			"mknod":      cmdMknod,
			"mkfifo":     cmdMkfifo,
			"ftype":      cmdFtype,
			"unixlisten": cmdUnixListen,
			"unixwait":   cmdUnixWait,
			"readmejson": cmdReadmeJSON,
			"kill9":      cmdKill9,
			"chown":      cmdChown,
			"corelimit":  cmdCoreLimit,
		}))),
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "mknod":
				return mknodCondition()
			case "root":
				return rootCondition()
			case "postgres":
				return postgresCondition()
			case "ext4":
				return ext4Condition()
			}
			if name, ok := strings.CutPrefix(cond, "tool:"); ok {
				return toolCondition(name)
			}
			return scriptCondition(cond)
		},
	})
}

// cmdExitCode runs "exitcode N prog args..." and fails unless prog exits
// with status N. stdout and stderr stay available to later assertions.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N prog args...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	if got := exitStatus(ts, ts.Exec(args[1], args[2:]...)); got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdGenFile writes "genfile NAME SIZE": SIZE deterministic pseudo-random bytes.
func cmdGenFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: genfile NAME SIZE")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("genfile: %v", err)
	}
	r := rand.NewChaCha8([32]byte{1})
	data := make([]byte, n)
	r.Read(data)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o644))
}

// cmdFlipByte flips "flipbyte FILE OFFSET": one bit of the byte at OFFSET,
// or at len+OFFSET when OFFSET is negative.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if off < 0 {
		off += len(data)
	}
	if off < 0 || off >= len(data) {
		ts.Fatalf("flipbyte: offset %d outside %d-byte file", off, len(data))
	}
	data[off] ^= 0x01
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o644))
}

// cmdNoTemp fails when "notemp DIR" holds a temporary output file.
func cmdNoTemp(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: notemp DIR")
	}
	err := filepath.WalkDir(ts.MkAbs(args[0]), func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			return fmt.Errorf("temporary file left behind: %s", path)
		}
		return err
	})
	ts.Check(err)
}

// cmdCutFile writes "cutfile SRC N DST": the first N bytes of SRC to DST.
func cmdCutFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: cutfile SRC N DST")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if n < 0 || n > len(data) {
		ts.Fatalf("cutfile: %d outside %d-byte file", n, len(data))
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), data[:n], 0o644))
}

// cmdInterrupt runs "interrupt SIGNAL CODE keystack args...": it starts
// keystack with a stdin pipe that delivers 256 KiB and then stalls, waits
// until keystack has read most of it (so its output is open and partly
// written: outputs are unnamed temporary files, which no directory lists),
// sends SIGINT, SIGTERM or SIGHUP, and fails unless keystack exits with CODE.
func cmdInterrupt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: interrupt INT|TERM|HUP CODE prog args...")
	}
	sig := map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "HUP": syscall.SIGHUP}[args[0]]
	want, err := strconv.Atoi(args[1])
	if sig == 0 || err != nil {
		ts.Fatalf("interrupt: bad signal %q or code %q", args[0], args[1])
	}
	path, err := exec.LookPath(args[2])
	ts.Check(err)
	cmd := exec.Command(path, args[3:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = append(os.Environ(), "KEYSTACK_HOME="+ts.Getenv("KEYSTACK_HOME"), "TEST_TTY="+ts.Getenv("TEST_TTY"))
	pr, pw, err := os.Pipe()
	ts.Check(err)
	defer pw.Close()
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = pr, &stderr
	ts.Check(cmd.Start())
	pr.Close()
	waitForReads(ts, pw, 256<<10)
	ts.Check(cmd.Process.Signal(sig))
	err = cmd.Wait()
	ts.Logf("[stderr]\n%s", stderr.String())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != want {
		ts.Fatalf("%s after SIG%s: %v, want exit %d", args[2], args[0], err, want)
	}
	if !strings.Contains(stderr.String(), "keystack: error: interrupted") {
		ts.Fatalf("stderr does not say interrupted")
	}
}

// cmdWithin runs "within DURATION N prog args...": like exitcode N, and
// fails unless prog also ends within DURATION. A prog still running then
// fails the script at once (which ends prog), so a hang cannot stall it.
func cmdWithin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: within DURATION N prog args...")
	}
	limit, err := time.ParseDuration(args[0])
	ts.Check(err)
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- ts.Exec(args[2], args[3:]...) }()
	select {
	case err = <-errc:
	case <-time.After(limit):
		ts.Fatalf("%s did not finish within %v", args[2], limit)
	}
	ts.Logf("%s took %v", args[2], time.Since(start).Round(time.Millisecond))
	if got := exitStatus(ts, err); got != want {
		ts.Fatalf("%s exited with %d, want %d", args[2], got, want)
	}
}

// exitStatus is the exit code of a finished ts.Exec.
func exitStatus(ts *testscript.TestScript, err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		ts.Fatalf("exec: %v", err)
	}
	return ee.ExitCode()
}

// waitForReads writes n bytes into the pipe w and returns once they are
// written: a pipe holds 64 KiB, so the reader has then read n-64 KiB.
func waitForReads(ts *testscript.TestScript, w *os.File, n int) {
	done := make(chan error, 1)
	go func() { _, err := w.Write(make([]byte, n)); done <- err }()
	select {
	case err := <-done:
		ts.Check(err)
	case <-time.After(30 * time.Second):
		ts.Fatalf("the command read no input within 30s")
	}
}
