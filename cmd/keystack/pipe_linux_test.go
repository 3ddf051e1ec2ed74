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
	env := pipeStore(t, bin, filepath.Join(t.TempDir(), "home"))
	plain := bytes.Repeat([]byte("pipes "), 200_000)
	msg := pipeThrough(t, bin, env, plain, "encrypt", "-k", "k1")
	if got := pipeThrough(t, bin, env, msg, "decrypt"); !bytes.Equal(got, plain) {
		t.Fatalf("round trip through pipes: %d bytes back, want %d", len(got), len(plain))
	}
}

// pipeStore makes an unsealed keystore with key k1 at home and returns
// the environment that uses it.
func pipeStore(t *testing.T, bin, home string) []string {
	t.Helper()
	env := append(os.Environ(), "KEYSTACK_HOME="+home)
	for _, args := range [][]string{{"init", "--insecure-no-passphrase"}, {"key", "create", "k1"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	return env
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

// A named FIFO given as -i grows as stdin does; the message read from it
// decrypts.
func TestFIFOInputGrows(t *testing.T) {
	t.Parallel()
	bin := buildCLITags(t, makeTags)
	dir := t.TempDir()
	env := pipeStore(t, bin, filepath.Join(dir, "home"))
	fifo, out := filepath.Join(dir, "in.fifo"), filepath.Join(dir, "out.ks")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Held open read-write, the FIFO's pipe exists before keystack opens
	// it, with the 64 KiB it must grow from.
	hold, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(hold.Fd(), unix.F_SETPIPE_SZ, 64<<10); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "encrypt", "-k", "k1", "-i", fifo, "-o", out)
	var stderr bytes.Buffer
	cmd.Env, cmd.Stderr = env, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte("fifo "), 300_000)
	if _, err := w.Write(plain); err != nil { // returns once keystack has read most of it
		t.Fatal(err)
	}
	n, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
	hold.Close() // then closing w, the last writer, ends the input
	w.Close()
	if werr := cmd.Wait(); werr != nil {
		t.Fatalf("encrypt -i FIFO: %v\n%s", werr, stderr.Bytes())
	}
	if err != nil || n != pipeBytes {
		t.Errorf("FIFO pipe of %d bytes (%v), want %d", n, err, pipeBytes)
	}
	dec := exec.Command(bin, "decrypt", "-i", out, "-o", "-")
	dec.Env = env
	if got, err := dec.Output(); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypt: %v, %d bytes, want %d", err, len(got), len(plain))
	}
}
