package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdGenTree writes "gentree DIR N SIZE": N files of SIZE pseudo-random
// bytes in DIR.
func cmdGenTree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: gentree DIR N SIZE")
	}
	n, err1 := strconv.Atoi(args[1])
	size, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		ts.Fatalf("gentree: bad N or SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	r := rand.NewChaCha8([32]byte{2})
	for i := range n {
		data := make([]byte, size)
		r.Read(data)
		ts.Check(os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), data, 0o644))
	}
}

// cmdKillRewrap runs "killrewrap ROUNDS DIR PLAINDIR": ROUNDS times it starts
// "keystack rewrap --workers 1 DIR", waits until the run has written a
// journal of its own and kills it with SIGKILL after a random delay of up
// to 5 ms (on a fast filesystem the whole tree takes a run some 40 ms);
// the last run it kills as soon as it has written four, and it repeats
// that last run (five times at most) until four journals are left. Then,
// as a user might, it puts other content at three paths that still have
// journals: $VICTIM1 replaced by a new file, $VICTIM2 edited in place
// (same inode and size, its first bytes overwritten), $VICTIM3 removed.
// What each should hold is in victim1.want and victim2.want. $SURVIVOR is
// a fourth path with a journal, left alone; $SURVIVOR_PLAIN its plaintext
// in PLAINDIR.
func cmdKillRewrap(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: killrewrap ROUNDS DIR PLAINDIR")
	}
	plainDir := args[2]
	rounds, err := strconv.Atoi(args[0])
	ts.Check(err)
	dir := ts.MkAbs(args[1])
	for round := range rounds - 1 {
		killRewrapOnce(ts, dir, round, 1, time.Duration(rand.IntN(5000))*time.Microsecond)
	}
	for round := rounds - 1; round == rounds-1 || round < rounds+5 && len(rewrapJournals(ts, dir)) < 4; round++ {
		killRewrapOnce(ts, dir, round, 4, 0) // three victims and a survivor
	}
	journals := rewrapJournals(ts, dir)
	if len(journals) < 4 {
		ts.Fatalf("killrewrap: %d journals left after the kills, want at least 4", len(journals))
	}
	ts.Logf("killrewrap: %d journals left", len(journals))
	victims := make([]string, 4)
	for i, j := range journals[:4] {
		victims[i] = filepath.Join(dir, strings.TrimSuffix(strings.TrimPrefix(j, ".ks-rewrap."), ".journal"))
		ts.Setenv(fmt.Sprintf("VICTIM%d", i+1), victims[i])
	}
	ts.Setenv("SURVIVOR", victims[3])
	ts.Setenv("SURVIVOR_PLAIN", filepath.Join(ts.MkAbs(plainDir), strings.TrimSuffix(filepath.Base(victims[3]), ".ks")))
	plain := make([]byte, 3000)
	rand.NewChaCha8([32]byte{3}).Read(plain)
	ts.Check(os.WriteFile(victims[0]+".new", plain, 0o644))
	ts.Check(os.Rename(victims[0]+".new", victims[0]))
	ts.Check(os.WriteFile(ts.MkAbs("victim1.want"), plain, 0o644))
	f, err := os.OpenFile(victims[1], os.O_WRONLY, 0)
	ts.Check(err)
	_, err = f.WriteAt([]byte(strings.Repeat("\xff", 64)), 0)
	ts.Check(err)
	ts.Check(f.Close())
	edited, err := os.ReadFile(victims[1])
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs("victim2.want"), edited, 0o644))
	ts.Check(os.Remove(victims[2]))
}

// killRewrapOnce kills one rewrap delay after it has written atLeast
// journals.
func killRewrapOnce(ts *testscript.TestScript, dir string, round, atLeast int, delay time.Duration) {
	before := rewrapJournals(ts, dir)
	path, err := exec.LookPath("keystack")
	ts.Check(err)
	cmd := exec.Command(path, "rewrap", "--workers", "1", "-q", dir)
	cmd.Env = append(os.Environ(), "KEYSTACK_HOME="+ts.Getenv("KEYSTACK_HOME"), "TEST_TTY="+ts.Getenv("TEST_TTY"))
	ts.Check(cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.After(30 * time.Second)
	for fresh := 0; fresh < atLeast; {
		select {
		case <-exited:
			ts.Logf("killrewrap round %d: the run ended before a kill", round)
			return
		case <-deadline:
			ts.Fatalf("killrewrap: no %d new journals within 30 s", atLeast)
		case <-time.After(time.Millisecond):
		}
		fresh = 0
		for _, j := range rewrapJournals(ts, dir) {
			if !slices.Contains(before, j) {
				fresh++
			}
		}
	}
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); errors.Is(err, os.ErrProcessDone) {
		ts.Logf("killrewrap round %d: the run ended before the kill", round)
	} else {
		ts.Check(err)
	}
	<-exited
}

// rewrapJournals lists the names of the rewrap journals in dir, sorted.
func rewrapJournals(ts *testscript.TestScript, dir string) []string {
	entries, err := os.ReadDir(dir)
	ts.Check(err)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".ks-rewrap.") && strings.HasSuffix(e.Name(), ".journal") {
			out = append(out, e.Name())
		}
	}
	return out
}
