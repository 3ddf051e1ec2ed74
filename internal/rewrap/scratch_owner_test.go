package rewrap

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/msgtree"
)

// A rewrap removes the temporary file a killed rewrap left beside a
// message, but not one of a rewrap still running in another process.
func TestRewrapSweepsOnlyDeadOwnersTemps(t *testing.T) {
	old, next := keyFor(t, "app/v1"), keyFor(t, "app/v2")
	dir := t.TempDir()
	writeMessageContext(t, filepath.Join(dir, "m.ks"), old, envelope.SuiteCommitted, 256, 2000, nil)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, msgtree.ScratchPrefix+"m.ks.tmp-"+strconv.Itoa(cmd.Process.Pid)+"-0123abcd")
	live := filepath.Join(dir, msgtree.ScratchPrefix+"m.ks.tmp-"+strconv.Itoa(os.Getppid())+"-0123abcd")
	for _, p := range []string{dead, live} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: old, To: next})
	if err != nil || len(sum.Failed) != 0 {
		t.Fatalf("rewrap: %+v %v", sum, err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead rewrap's temporary file stayed: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a running rewrap's temporary file was removed: %v", err)
	}
}
