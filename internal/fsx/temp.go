package fsx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Named temporary files are called PREFIX.tmp-PID-RAND: PID is the
// owner's process ID and RAND 8 hex digits. Only such names are ever
// swept, and only once their owner has exited, so a run never removes
// another live process's file, while what a kill -9 left behind goes with
// the next run that writes into the same directory.
const (
	tempInfix = ".tmp-"
	randHex   = 8
)

// CreateTemp creates a named temporary file in dir, called
// prefix.tmp-PID-RAND, with O_EXCL and mode 0600, after sweeping dir (once
// per process) of such files whose owner is gone. Use it only where a file
// must have a name while it is written; Create needs none on Linux.
func CreateTemp(dir, prefix string) (*os.File, error) {
	sweepOnce(dir)
	for range 100 {
		name := filepath.Join(dir, tempName(prefix))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &os.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+tempInfix+"*"), Err: fs.ErrExist}
}

func tempName(prefix string) string {
	var b [randHex / 2]byte
	_, _ = rand.Read(b[:])
	return prefix + tempInfix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// tempOwner returns the process ID a temporary file's name carries.
func tempOwner(name string) (int, bool) {
	i := strings.LastIndex(name, tempInfix)
	if i <= 0 || !strings.HasPrefix(name, ".") {
		return 0, false
	}
	pid, rnd, ok := strings.Cut(name[i+len(tempInfix):], "-")
	if !ok || len(rnd) != randHex || strings.Trim(rnd, "0123456789abcdef") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 || strconv.Itoa(n) != pid {
		return 0, false
	}
	return n, true
}

// IsTemp reports whether name (a base name) is a temporary file's name as
// CreateTemp and Create give them: .PREFIX.tmp-PID-RAND.
func IsTemp(name string) bool {
	_, ok := tempOwner(name)
	return ok
}

// processGone reports whether no process pid exists (a variable for tests).
var processGone = func(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

var swept sync.Map // directory → struct{}

func sweepOnce(dir string) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if _, loaded := swept.LoadOrStore(dir, struct{}{}); !loaded {
		Sweep(dir)
	}
}

// Sweep removes from dir the temporary files left by processes that no
// longer run (killed with SIGKILL, or by a crash). It returns the paths it
// removed. Only regular files named as CreateTemp names them are touched.
func Sweep(dir string) []string {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, de := range des {
		pid, ok := tempOwner(de.Name())
		if !ok || !de.Type().IsRegular() || pid == os.Getpid() || !processGone(pid) {
			continue
		}
		p := filepath.Join(dir, de.Name())
		if os.Remove(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// Scratch returns a private read-write file in dir that no directory
// lists: unnamed (O_TMPFILE) on Linux, elsewhere a CreateTemp file
// removed at once, so that only a kill in between can leave it (and the
// next Scratch or Create in dir sweeps it). Closing it frees its space.
func Scratch(dir string) (*os.File, error) {
	f, err := openUnnamed(dir, "scratch")
	if !errors.Is(err, errUnnamed) {
		return f, err
	}
	f, err = CreateTemp(dir, ".keystack-scratch")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OwnerAlive reports whether name is a temporary file named by CreateTemp
// (or Create) for another process that still runs: such a file may be in
// use and must not be removed. This process's own files do not count; it
// knows which of them it still uses.
func OwnerAlive(name string) bool {
	pid, ok := tempOwner(filepath.Base(name))
	return ok && pid != os.Getpid() && !processGone(pid)
}
