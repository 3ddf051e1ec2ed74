package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/esdktest"
	"github.com/keystack/keystack/keyring"
)

// maxRSSKiB is the peak resident memory no input may drive a command above
// at default settings (issue 11, item 6).
const maxRSSKiB = 64 << 10

// TestHostileInputsBoundedRSS runs the built CLI on inputs shaped to make
// a reader allocate (huge declared lengths and counts, long runs of zeros,
// the largest frames the defaults allow, one-byte frames) and checks each
// command's peak RSS, as the kernel reports it (wait4 rusage ru_maxrss),
// stays under 64 MiB. The keystore is unsealed: a sealed one adds argon2id's
// 64 MiB once per command, whatever the input.
func TestHostileInputsBoundedRSS(t *testing.T) {
	t.Parallel() // child processes only; each measures its own peak RSS
	if os.Getenv(rssChildEnv) != "" {
		t.Fatal("the measuring wrapper ran the tests: TestMain must call rssWrap")
	}
	bin := buildCLITags(t, "") // as users run it
	work := t.TempDir()
	env := append(os.Environ(), "KEYSTACK_HOME="+filepath.Join(work, "home"))
	ks := func(args ...string) (int, int64) { return runMeasured(t, bin, env, args...) }
	mustRun := func(args ...string) {
		if code, _ := ks(args...); code != 0 {
			t.Fatalf("keystack %s: exit %d", strings.Join(args, " "), code)
		}
	}
	key := bytes.Repeat([]byte{7}, 32)
	keyFile := filepath.Join(work, "aes.b64")
	writeBytes(t, keyFile, []byte(base64.StdEncoding.EncodeToString(key)))
	mustRun("init", "--insecure-no-passphrase")
	mustRun("key", "import", "spec", "--aes-key-file", keyFile, "--namespace", "spec", "--key-name", "aes")
	mustRun("key", "create", "k1")

	dir := filepath.Join(work, "in")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.NewRawAES("spec", "aes", key)
	if err != nil {
		t.Fatal(err)
	}
	writeHostileInputs(t, dir, kr)
	plain := filepath.Join(work, "plain.bin")
	writeBytes(t, plain, bytes.Repeat([]byte("keystack"), 4<<20)) // 32 MiB
	mustRun("encrypt", "-k", "k1", "--signed", "--frame-size", "4194304", "-i", plain, "-o", filepath.Join(dir, "cli-signed-4mib.ks"))
	mustRun("encrypt", "-k", "k1", "-i", plain, "-o", filepath.Join(dir, "cli-default.ks"))

	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) < 10 {
		t.Fatalf("inputs: %v %v", files, err)
	}
	check := func(name string, args ...string) {
		code, rss := ks(args...)
		t.Logf("%-60s exit %d, peak RSS %5d KiB", name, code, rss)
		if rss > maxRSSKiB {
			t.Errorf("%s: peak RSS %d KiB, above %d KiB", name, rss, maxRSSKiB)
		}
	}
	out := filepath.Join(work, "out.bin")
	for _, f := range files {
		base := filepath.Base(f)
		check("decrypt -o FILE "+base, "decrypt", "-i", f, "-o", out, "--force")
		check("decrypt -o - "+base, "decrypt", "-i", f, "-o", "-")
		check("inspect "+base, "inspect", f)
	}
	check("inventory", "inventory", dir)
	mustRun("key", "rotate", "k1")
	check("rewrap", "rewrap", dir)
	for _, f := range []string{"cli-signed-4mib.ks", "cli-default.ks", "max-frames-real.ks"} {
		if code, _ := ks("decrypt", "-i", filepath.Join(dir, f), "-o", out, "--force"); code != 0 {
			t.Errorf("%s no longer decrypts after rewrap: exit %d", f, code)
		}
	}
}

// rssChildEnv makes the test binary a measuring wrapper: it runs its
// arguments as a command and writes the command's peak RSS to the file the
// variable names. The wrapper is needed because Linux carries the RSS high
// water mark of the address space a process is exec'd from into its
// ru_maxrss, and Go starts children from the (large) test process's
// address space; the wrapper's own is small, so the figure is the
// command's, plus at most the wrapper's few MiB.
const rssChildEnv = "KEYSTACK_TEST_RSS_OUT"

// rssWrap runs argv, records its peak RSS in KiB in out, and returns its
// exit code.
func rssWrap(out string, argv []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, rssChildEnv+"=") })
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if err := os.WriteFile(out, []byte(strconv.FormatInt(ru.Maxrss, 10)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	return cmd.ProcessState.ExitCode()
}

// runMeasured runs bin with args through rssWrap, stdout to /dev/null,
// and returns its exit code and peak RSS in KiB.
func runMeasured(t *testing.T, bin string, env []string, args ...string) (int, int64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rss")
	cmd := exec.Command(os.Args[0], append([]string{bin}, args...)...)
	cmd.Env = append(env, rssChildEnv+"="+out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("keystack %s: %v", strings.Join(args, " "), err)
	}
	b, rerr := os.ReadFile(out)
	if rerr != nil || cmd.ProcessState.ExitCode() == 125 {
		t.Fatalf("keystack %s: no measurement (%v): %s", strings.Join(args, " "), rerr, stderr.String())
	}
	rss, perr := strconv.ParseInt(string(b), 10, 64)
	if perr != nil {
		t.Fatal(perr)
	}
	return cmd.ProcessState.ExitCode(), rss
}

func writeBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeHostileInputs writes the hostile and extreme messages into dir.
func writeHostileInputs(t *testing.T, dir string, kr envelope.Keyring) {
	t.Helper()
	spec := func(hs esdktest.HeaderSpec) *esdktest.Message {
		m, err := esdktest.NewMessage(context.Background(), kr, hs)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	put := func(name string, parts ...[]byte) { writeBytes(t, filepath.Join(dir, name), bytes.Join(parts, nil)) }
	zeros := make([]byte, 32<<20)
	maxFL := envelope.DefaultMaxFrameLength

	put("huge-frame-length.ks", spec(esdktest.HeaderSpec{FrameLength: 1<<32 - 1}).Header, zeros)
	m := spec(esdktest.HeaderSpec{FrameLength: uint32(maxFL)})
	var garbage []byte // frames of the largest length, right sequence numbers, forged tags
	for seq := uint32(1); seq <= 8; seq++ {
		garbage = binary.BigEndian.AppendUint32(garbage, seq)
		garbage = append(garbage, make([]byte, 12+maxFL+16)...)
	}
	put("max-frames-garbage.ks", m.Header, garbage)
	m = spec(esdktest.HeaderSpec{FrameLength: uint32(maxFL)})
	put("max-frames-real.ks", m.Header, m.Framed(zeros, maxFL, esdktest.SequenceIV))
	m = spec(esdktest.HeaderSpec{FrameLength: 1})
	put("one-byte-frames-real.ks", m.Header, m.Framed(zeros[:1<<20], 1, esdktest.SequenceIV))
	m = spec(esdktest.HeaderSpec{NonFramed: true})
	put("non-framed-limit-real.ks", m.Header, m.NonFramed(esdktest.RandomIV(0), zeros[:16<<20]))
	m = spec(esdktest.HeaderSpec{NonFramed: true})
	put("non-framed-huge-length.ks", m.Header, make([]byte, 12), binary.BigEndian.AppendUint64(nil, 1<<63), zeros[:1<<20])
	put("v1-non-framed-huge-length.ks", v1NonFramedHeader(), make([]byte, 12), binary.BigEndian.AppendUint64(nil, 1<<36-32), zeros[:1<<20])
	put("edk-count.ks", rawV2Prefix(), []byte{0xFF, 0xFF}, zeros[:1<<20])
	edks := []byte{0, 32}
	for range 32 * 3 {
		edks = append(append(edks, 0xFF, 0xFF), bytes.Repeat([]byte{'x'}, 0xFFFF)...)
	}
	put("edk-lengths.ks", rawV2Prefix(), edks)
	put("context-length.ks", []byte{2, 0x04, 0x78}, make([]byte, 32), []byte{0xFF, 0xFF, 0xFF, 0xFF}, zeros[:1<<20])
	put("zeros.ks", zeros)
}

// rawV2Prefix is a v2 header up to the EDK count, with an empty context.
func rawV2Prefix() []byte {
	return append(append([]byte{2, 0x04, 0x78}, make([]byte, 32)...), 0, 0)
}

// v1NonFramedHeader is a v1 header (suite 0x0178) of content type 1 with
// one EDK and a forged tag: parsed by inspect and inventory, refused by
// decrypt at its tag.
func v1NonFramedHeader() []byte {
	b := append([]byte{1, 0x80, 0x01, 0x78}, make([]byte, 16)...)
	b = append(b, 0, 0, 0, 1) // empty context, one EDK
	for _, f := range []string{"spec", "aes", "ciphertext"} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	b = append(b, 1, 0, 0, 0, 0, 12, 0, 0, 0, 0) // non-framed, reserved, IV length, frame length 0
	return append(b, make([]byte, 12+16)...)     // header IV, tag
}
