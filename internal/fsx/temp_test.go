package fsx

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

func TestTempNamesCarryThePid(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateTemp(dir, ".out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pid, ok := tempOwner(filepath.Base(f.Name()))
	if !ok || pid != os.Getpid() {
		t.Fatalf("%s: owner %d %v, want %d", f.Name(), pid, ok, os.Getpid())
	}
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	for _, name := range []string{"out.tmp-12-0123abcd", ".out.tmp-012-0123abcd", ".out.tmp-12-0123abc",
		".out.tmp-12-0123ABCD", ".out.tmp-x-0123abcd", ".out.tmp-12-0123abcd.ks", ".out.tmp-0-0123abcd"} {
		if _, ok := tempOwner(name); ok || IsTemp(name) {
			t.Errorf("%q taken for a temporary file", name)
		}
	}
	if !IsTemp(filepath.Base(f.Name())) {
		t.Errorf("IsTemp(%q) = false for CreateTemp's own name", f.Name())
	}
}

// deadPid returns the ID of a process that has exited.
func deadPid(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// Sweep removes only well-named regular files of processes that are gone.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	dead, live := deadPid(t), os.Getppid()
	name := func(pid int) string { return ".out.tmp-" + strconv.Itoa(pid) + "-0123abcd" }
	files := map[string]bool{ // name → must be swept
		name(dead): true, name(live): false, name(os.Getpid()): false,
		"out.tmp-" + strconv.Itoa(dead) + "-0123abcd": false, "notes.txt": false,
	}
	for n := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, ".d.tmp-"+strconv.Itoa(dead)+"-0123abce"), 0o700)
	removed := Sweep(dir)
	if want := []string{filepath.Join(dir, name(dead))}; !slices.Equal(removed, want) {
		t.Fatalf("swept %q, want %q", removed, want)
	}
	if got := entries(t, dir); len(got) != 5 {
		t.Fatalf("dir holds %v", got)
	}
}

// TestKilledWriter kills a process writing an output with SIGKILL, while
// it writes and inside the one window where an unnamed file has a
// temporary name (replacing a target): the first leaves nothing at all on
// Linux; the second leaves a file the next Create in the directory sweeps.
// With named temporary files both leave such a file.
func TestKilledWriter(t *testing.T) {
	for _, c := range []struct{ stage, named string }{{"writing", ""}, {"named", ""}, {"writing", "1"}} {
		dir := t.TempDir()
		target := filepath.Join(dir, "out")
		os.WriteFile(target, []byte("old"), 0o600)
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "ATOMICFILE_HELPER="+c.stage, "ATOMICFILE_TARGET="+target, "ATOMICFILE_NAMED="+c.named)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Fatalf("helper: %q %v", line, err)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		left := entries(t, dir)
		if unnamed := c.stage == "writing" && c.named == ""; unnamed != (len(left) == 1) {
			t.Errorf("%v: a SIGKILL left %v", c, left)
		}
		f, err := Create(filepath.Join(dir, "next"), false)
		if err != nil {
			t.Fatal(err)
		}
		f.Abort()
		if got := entries(t, dir); !slices.Equal(got, []string{"out"}) {
			t.Errorf("%v: after the next run, dir holds %v (before %v)", c, got, left)
		}
		if got, _ := os.ReadFile(target); string(got) != "old" {
			t.Errorf("%v: target holds %q", c, got)
		}
		swept.Delete(dir)
	}
}

// TestMain runs the test binary as helperWriter when TestKilledWriter
// starts it so.
func TestMain(m *testing.M) {
	if stage := os.Getenv("ATOMICFILE_HELPER"); stage != "" {
		helperWriter(stage)
	}
	os.Exit(m.Run())
}

// helperWriter is the process TestKilledWriter kills: it writes an output
// (replacing the target), up to stage, says so, and waits.
func helperWriter(stage string) {
	noUnnamed = os.Getenv("ATOMICFILE_NAMED") != ""
	f, err := Create(os.Getenv("ATOMICFILE_TARGET"), true)
	if err == nil {
		_, err = f.Write(make([]byte, 1<<20))
	}
	if err == nil && stage == "named" {
		err = f.name()
	}
	if err != nil {
		os.Stdout.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	select {}
}
