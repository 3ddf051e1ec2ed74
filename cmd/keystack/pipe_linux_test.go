package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStreamsGrowPipes: encrypt and decrypt streaming through pipes leave
// both pipes at pipeBytes, and the bytes round-trip.
func TestStreamsGrowPipes(t *testing.T) {
	t.Parallel()
	bin := buildCLITags(t, makeTags)
	env := append(os.Environ(), "KEYSTACK_HOME="+filepath.Join(t.TempDir(), "home"))
	for _, args := range [][]string{{"init", "--insecure-no-passphrase"}, {"key", "create", "k1"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	plain := bytes.Repeat([]byte("pipes "), 200_000)
	msg := pipeThrough(t, bin, env, plain, "encrypt", "-k", "k1")
	if got := pipeThrough(t, bin, env, msg, "decrypt"); !bytes.Equal(got, plain) {
		t.Fatalf("round trip through pipes: %d bytes back, want %d", len(got), len(plain))
	}
}

// pipeThrough runs keystack args with its stdin and stdout pipes of 64
// KiB, checks that both have grown to pipeBytes, and returns its output.
func pipeThrough(t *testing.T, bin string, env []string, in []byte, args ...string) []byte {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close() // held open to ask its size at the end
	defer outR.Close()
	for _, f := range []*os.File{inR, outW} {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 64<<10); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdin, cmd.Stdout = env, inR, outW
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	go func() { inW.Write(in); inW.Close() }()
	out, err := io.ReadAll(outR)
	if werr := cmd.Wait(); err != nil || werr != nil {
		t.Fatalf("keystack %v: %v %v\n%s", args, err, werr, stderr.Bytes())
	}
	for name, f := range map[string]*os.File{"stdin": inR, "stdout": outR} {
		if n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0); err != nil || n != pipeBytes {
			t.Errorf("keystack %v: %s pipe of %d bytes (%v), want %d", args, name, n, err, pipeBytes)
		}
	}
	return out
}
