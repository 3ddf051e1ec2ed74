package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/gatewire"
	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/internal/pgtest"
)

// liteLeftOut are the packages the lite build does not link: the AWS SDK
// (its clients, configuration, signer and smithy) and package client,
// pgx and the keystore's PostgreSQL storage, audit and lease, the key
// server, its XKS proxy and KMS wire code, the rotation runner and
// daemon, PKCS#11 (the cgo binding, the token code and the hsm backend),
// and net/http with crypto/tls, whose package initialisation and size
// every command would pay (the rotation runner's webhooks use them). An
// entry ending in "/" is a prefix; any other covers the packages under it.
var liteLeftOut = []string{
	"github.com/aws/", "github.com/keystack/keystack/keystore/awskms", "github.com/keystack/keystack/client",
	"github.com/jackc/", "github.com/keystack/keystack/internal/pgstorage", "github.com/keystack/keystack/internal/pgaudit",
	"github.com/keystack/keystack/internal/pglease", "github.com/keystack/keystack/server", "github.com/keystack/keystack/xks",
	"github.com/keystack/keystack/internal/kmswire", "github.com/keystack/keystack/rotation", "github.com/keystack/keystack/internal/rotationd",
	"github.com/miekg/pkcs11", "github.com/keystack/keystack/internal/pkcs11token", "github.com/keystack/keystack/hsm",
	"net/http", "crypto/tls",
}

// TestLiteLinks: the lite build, without cgo as make build builds it,
// links none of liteLeftOut; the complete build links each, so the names
// checked are real.
func TestLiteLinks(t *testing.T) {
	t.Parallel() // child processes only
	for _, b := range []struct {
		tags, cgo string
		links     bool
	}{{liteTags, "0", false}, {makeTags, "1", true}} {
		cmd := exec.Command("go", "list", "-deps", "-tags", b.tags, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -tags %q with CGO_ENABLED=%s: %v", b.tags, b.cgo, err)
		}
		for _, left := range liteLeftOut {
			var linked []string
			for pkg := range strings.Lines(string(out)) {
				pkg = strings.TrimSpace(pkg)
				if strings.HasPrefix(pkg, left) && (strings.HasSuffix(left, "/") || pkg == left || pkg[len(left)] == '/') {
					linked = append(linked, pkg)
				}
			}
			if got := len(linked) > 0; got != b.links {
				t.Errorf("tags %q: links %s: %v, want %v: %v", b.tags, left, got, b.links, linked)
			}
		}
	}
}

// liteCmd runs one CLI binary in the tests of the lite build, as cred
// when it is not nil.
type liteCmd struct {
	t    *testing.T
	bin  string
	env  []string
	cred *syscall.Credential
}

// cliResult is what a CLI run left.
type cliResult struct {
	stdout, stderr []byte
	code           int
}

// run runs args with stdin (nil: none), in a new session, so that no
// passphrase prompt can reach the terminal of whoever runs the tests.
func (l liteCmd) run(stdin []byte, args ...string) cliResult {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hand-off loop fails, not hangs
	defer cancel()
	cmd := exec.CommandContext(ctx, l.bin, args...)
	cmd.Env = l.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: l.cred}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		l.t.Fatalf("keystack %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{stdout.Bytes(), stderr.Bytes(), cmd.ProcessState.ExitCode()}
}

// ok runs args and fails the test unless they succeed.
func (l liteCmd) ok(stdin []byte, args ...string) []byte {
	l.t.Helper()
	r := l.run(stdin, args...)
	if r.code != 0 {
		l.t.Fatalf("keystack %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// newLiteCmd is bin with a new keystore directory under dir and extra env.
func newLiteCmd(t *testing.T, bin, dir string, env ...string) liteCmd {
	base := []string{"KEYSTACK_HOME=" + filepath.Join(dir, "home"), "PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	return liteCmd{t: t, bin: bin, env: append(base, env...)}
}

// initLite is newLiteCmd on a new unsealed keystore.
func initLite(t *testing.T, bin, dir string, env ...string) liteCmd {
	ks := newLiteCmd(t, bin, dir, env...)
	ks.ok(nil, "init", "--insecure-no-passphrase")
	return ks
}

// roundTrip pipes random bytes through encrypt and decrypt with the
// extra arguments given, stdin to stdout, and fails unless they come back
// byte for byte.
func (l liteCmd) roundTrip(n int, encrypt, decrypt []string) {
	l.t.Helper()
	plain := make([]byte, n)
	rand.Read(plain)
	got := l.ok(l.ok(plain, append([]string{"encrypt"}, encrypt...)...), append([]string{"decrypt"}, decrypt...)...)
	if !bytes.Equal(got, plain) {
		l.t.Fatalf("encrypt %v | decrypt %v: %d bytes back, want the %d sent", encrypt, decrypt, len(got), len(plain))
	}
}

// linkAlone links the lite build into a new directory, with keystack-full
// beside it when full is not "": the CLI finds keystack-full by its own
// path, which /proc/self/exe gives as the link it was run by.
func linkAlone(t *testing.T, lite, full string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{"keystack": lite, fullName: full} {
		if src == "" {
			continue
		}
		if err := os.Link(src, filepath.Join(dir, name)); err != nil {
			t.Skipf("cannot hard-link the CLI into a test directory: %v", err)
		}
	}
	return filepath.Join(dir, "keystack")
}

// TestLiteBuild runs the lite build as make build makes it: local work
// without keystack-full, and every command that may need AWS KMS or a key
// server handed to keystack-full before it reads or writes anything.
func TestLiteBuild(t *testing.T) {
	t.Parallel() // child processes only
	if testing.Short() {
		t.Skip("builds the CLI twice")
	}
	lite := buildLitePair(t)
	full := filepath.Join(filepath.Dir(lite), fullName)
	t.Run("same CLI", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"--help"}, {"encrypt", "--help"}, {"decrypt", "--help"}, {"key", "create", "--help"},
			{"seal", "set", "--help"}, {"audit", "show", "--help"}, {"init", "--help"}, {"server", "--help"},
			{"server", "migrate", "--help"}, {"rotate", "daemon", "--help"}, {"hsm", "--help"}, {"hsm", "keygen", "--help"},
			{"--version"}} {
			l, f := newLiteCmd(t, lite, t.TempDir()).ok(nil, args...), newLiteCmd(t, full, t.TempDir()).ok(nil, args...)
			if !bytes.Equal(l, f) {
				t.Errorf("keystack %s: the builds differ:\nlite:\n%s\nfull:\n%s", strings.Join(args, " "), l, f)
			}
		}
	})
	t.Run("static", func(t *testing.T) { t.Parallel(); testLiteStatic(t, lite, full) })
	t.Run("local work without keystack-full", func(t *testing.T) { t.Parallel(); testLiteLocal(t, linkAlone(t, lite, "")) })
	t.Run("keystack-full missing", func(t *testing.T) { t.Parallel(); testLiteNoFull(t, linkAlone(t, lite, "")) })
	t.Run("loop guard", func(t *testing.T) { t.Parallel(); testLiteLoop(t, linkAlone(t, lite, lite)) })
	t.Run("symlink", func(t *testing.T) { t.Parallel(); testLiteSymlink(t, lite) })
	t.Run("aws-kms hands off", func(t *testing.T) { t.Parallel(); testLiteKMS(t, lite) })
	t.Run("server mode hands off", func(t *testing.T) { t.Parallel(); testLiteServer(t, lite) })
	t.Run("rotate daemon hands off", func(t *testing.T) { t.Parallel(); testLiteDaemon(t, lite) })
	t.Run("PostgreSQL storage hands off", func(t *testing.T) { t.Parallel(); testLitePG(t, lite) })
	t.Run("store with a pkcs11 key hands off", func(t *testing.T) { t.Parallel(); testLitePKCS11Store(t, lite) })
	t.Run("kill -9 around the hand-off", func(t *testing.T) { t.Parallel(); testLiteKillHandOff(t, lite) })
	t.Run("pkcs11 hands off", func(t *testing.T) { t.Parallel(); testLiteHSM(t, lite) })
	t.Run("user only NSS names hands off", func(t *testing.T) { t.Parallel(); testLiteNSSUser(t, lite) })
}

// testLiteLocal: with no keystack-full to exec, empty files and a stream
// through stdin and stdout encrypt and decrypt under a local key.
func testLiteLocal(t *testing.T, lite string) {
	dir := t.TempDir()
	ks := initLite(t, lite, dir)
	ks.ok(nil, "key", "create", "k")
	empty, msg, out := filepath.Join(dir, "empty"), filepath.Join(dir, "empty.ks"), filepath.Join(dir, "out")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ks.ok(nil, "encrypt", "-k", "k", "-i", empty, "-o", msg)
	ks.ok(nil, "decrypt", "-i", msg, "-o", out)
	if data, err := os.ReadFile(out); err != nil || len(data) != 0 {
		t.Fatalf("empty file decrypted to %q, %v", data, err)
	}
	ks.roundTrip(100<<10, []string{"-k", "k"}, nil)
	// os/user without cgo names the principal as the C library does.
	var entries []struct{ Principal string }
	if err := json.Unmarshal(ks.ok(nil, "audit", "show", "--json"), &entries); err != nil || len(entries) == 0 {
		t.Fatalf("audit show --json: %d entries, %v", len(entries), err)
	}
	if want := gatewire.OSPrincipal(); entries[0].Principal != want {
		t.Errorf("the lite build's principal: %q, want %q as in this cgo test binary", entries[0].Principal, want)
	}
}

// testLiteNoFull: a command that needs keystack-full, when it is missing,
// exits 7 naming the file looked for and how to install it, and leaves no
// output and no temporary file.
func testLiteNoFull(t *testing.T, lite string) {
	dir := t.TempDir()
	ks := initLite(t, lite, dir)
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(filepath.Dir(lite), fullName)
	noDB := "postgres://keystack@127.0.0.1:1/none" // never reached: the hand-off comes first
	for _, args := range [][]string{
		{"encrypt", "-k", "arn:aws:kms:us-east-1:111122223333:key/k", "-o", filepath.Join(outDir, "msg.ks")},
		{"decrypt", "--discovery", "-o", filepath.Join(outDir, "plain")},
		{"decrypt", "-k", "aws-kms:arn:aws:kms:us-east-1:111122223333:key/k", "--discovery-account", "111122223333", "-o", filepath.Join(outDir, "p2")},
		{"key", "list", "--server", "unix://" + filepath.Join(dir, "no.sock")},
		{"audit", "show", "--server", "unix://" + filepath.Join(dir, "no.sock")},
		{"key", "create", "kms", "--backend", "aws-kms", "--ref", "arn:aws:kms:us-east-1:111122223333:key/k"},
		{"seal", "set", "awskms:arn:aws:kms:us-east-1:111122223333:key/k"},
		{"server", "--unix", filepath.Join(outDir, "ks.sock")},
		{"rotate", "daemon", "--interval", "1h"},
		{"server", "migrate", "--storage", noDB},
		{"--storage", noDB, "key", "create", "pg"},
		{"--storage", noDB, "encrypt", "-k", "k", "-o", filepath.Join(outDir, "pg.ks")},
		{"hsm", "list"}, // no --pkcs11-uri: keystack-full's usage error
		{"hsm", "list", "--pkcs11-uri", "pkcs11:token=T"},
		{"hsm", "keygen", "--pkcs11-uri", "pkcs11:token=T", "--label", "k"},
		{"encrypt", "-k", "pkcs11:token=T;object=k", "-o", filepath.Join(outDir, "p11.ks")},
		{"decrypt", "-k", "pkcs11:pkcs11:token=T;object=k", "-o", filepath.Join(outDir, "p11")},
		{"key", "create", "hsm1", "--backend", "pkcs11", "--ref", "pkcs11:token=T;object=k"},
		{"key", "create", "hsm2", "--pkcs11-uri", "pkcs11:token=T;object=k"},
		{"key", "create", "hsm3", "--generate"},
		{"seal", "set", "pkcs11:token=T;object=seal"},
		{"rotate", "run"},
	} {
		r := ks.run([]byte("data that must not be read"), args...)
		if r.code != exitNoFull || !bytes.Contains(r.stderr, []byte(want+":")) || !bytes.Contains(r.stderr, []byte("make install")) ||
			!bytes.Contains(r.stderr, []byte("go install github.com/keystack/keystack/cmd/keystack@latest")) {
			t.Errorf("keystack %s without %s: exit %d, want %d naming it and how to install it\n%s",
				strings.Join(args, " "), fullName, r.code, exitNoFull, r.stderr)
		}
		if len(r.stdout) != 0 {
			t.Errorf("keystack %s wrote %q to stdout", strings.Join(args, " "), r.stdout)
		}
	}
	if left, _ := os.ReadDir(outDir); len(left) != 0 {
		t.Errorf("the failed hand-offs left %v in the output directory", left)
	}
	if keys := ks.ok(nil, "key", "list"); bytes.Contains(keys, []byte("kms")) || bytes.Contains(keys, []byte("pg")) ||
		bytes.Contains(keys, []byte("hsm")) {
		t.Errorf("a failed hand-off of key create left a key:\n%s", keys)
	}
}

// testLiteLoop: a lite build installed as keystack-full is refused, not
// exec'd in a loop.
func testLiteLoop(t *testing.T, lite string) {
	ks := newLiteCmd(t, lite, t.TempDir())
	r := ks.run(nil, "encrypt", "-k", "arn:aws:kms:us-east-1:111122223333:key/k", "-o", "/dev/null")
	if r.code != exitNoFull || !bytes.Contains(r.stderr, []byte("handed it back")) {
		t.Fatalf("lite build as %s: exit %d, want %d saying it handed the command back\n%s", fullName, r.code, exitNoFull, r.stderr)
	}
}

// testLiteSymlink: a symbolic link to the lite build, in a directory
// without keystack-full, finds the one beside the file it links to.
func testLiteSymlink(t *testing.T, lite string) {
	dir := t.TempDir()
	link := filepath.Join(dir, "keystack")
	if err := os.Symlink(lite, link); err != nil {
		t.Fatal(err)
	}
	r := newLiteCmd(t, link, dir).run(nil, "key", "list", "--server", "unix://"+filepath.Join(dir, "no.sock"))
	if r.code != exitUnavailable || !bytes.Contains(r.stderr, []byte("keystack server unavailable")) {
		t.Fatalf("key list --server through a symlink: exit %d, want %d from %s (no server)\n%s", r.code, exitUnavailable, fullName, r.stderr)
	}
}

// testLiteKMS: a KMS key to create, -k ARN, --discovery and a store
// listing an aws-kms key are handed to keystack-full (the lite build fails
// any KMS call), once each: a stream piped through survives byte for byte,
// KMS sees one call per command and the audit log one record.
func testLiteKMS(t *testing.T, lite string) {
	f, err := newKMSFixture()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Close)
	dir := t.TempDir()
	var env []string
	for k, v := range f.env(dir) {
		env = append(env, k+"="+v)
	}
	ks := initLite(t, lite, dir, env...)
	ks.ok(nil, "key", "create", "payments", "--backend", "aws-kms", "--kms-key", f.key1)
	ks.roundTrip(300<<10, []string{"-k", "payments"}, nil)
	if n := f.srv.Calls("GenerateDataKey"); n != 1 {
		t.Fatalf("encrypt through the hand-off: %d GenerateDataKey calls, want 1", n)
	}
	// The commands that read stdin before any key: it reaches keystack-full whole.
	ks.ok(ks.ok(nil, "policy", "get", "--json"), "policy", "put", "-i", "-")
	ks.ok([]byte("0123456789abcdef"), "key", "import", "imported", "--aes-key-file", "/dev/stdin", "--namespace", "ns")
	// seal show has no server mode: it warns once, not again in keystack-full.
	r := liteCmd{t: t, bin: lite, env: append(ks.env, "KEYSTACK_SERVER=unix:///nonexistent")}.run(nil, "seal", "show")
	if r.code != 0 || bytes.Count(r.stderr, []byte("has no server mode")) != 1 {
		t.Fatalf("seal show with $KEYSTACK_SERVER set: exit %d, want 0 with one warning\n%s", r.code, r.stderr)
	}
	var entries []struct{ Action string }
	if err := json.Unmarshal(ks.ok(nil, "audit", "show", "--json"), &entries); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Action]++
	}
	for _, action := range []string{"keystack:Encrypt", "keystack:Decrypt", "keystack:PutPolicy", "keystack:ImportKey"} {
		if counts[action] != 1 {
			t.Errorf("audit log: %d %s records, want 1", counts[action], action)
		}
	}
	// A store with no KMS key: the flags alone hand off.
	initLite(t, lite, t.TempDir(), env...).roundTrip(1000, []string{"-k", f.key2}, []string{"--discovery"})
}

// testLiteServer: server mode is handed to keystack-full, against a key
// server the lite build runs itself (its store has no KMS key).
func testLiteServer(t *testing.T, lite string) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ks.sock")
	startLiteServer(t, initLite(t, lite, dir), "--unix", sock)
	client := newLiteCmd(t, lite, dir, "KEYSTACK_HOME="+filepath.Join(dir, "no-keystore"), "KEYSTACK_SERVER=unix://"+sock)
	client.ok(nil, "key", "create", "served")
	client.roundTrip(64<<10, []string{"-k", "served"}, nil)
}

// testLiteDaemon: rotate daemon is handed to keystack-full, whose first
// pass rotates a due key and which SIGTERM stops with exit 0.
func testLiteDaemon(t *testing.T, lite string) {
	ks := initLite(t, lite, t.TempDir())
	ks.ok(nil, "key", "create", "k1")
	ks.ok(nil, "key", "policy", "k1", "--every", "1ns")
	cmd, pass := startLite(t, ks, "rotation pass finished", "rotate", "daemon", "--interval", "1h")
	if !strings.Contains(pass, "rotated=1 ") {
		t.Errorf("rotate daemon's first pass: %s, want k1 rotated", pass)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rotate daemon stopped by SIGTERM: %v, want exit 0", err)
	}
}

// testLitePG: commands on a keystore in PostgreSQL (--storage or
// $KEYSTACK_STORAGE) and server migrate are handed to keystack-full.
// Without it they fail before the database sees them: keystack server
// --storage used to apply the schema migrations first.
func testLitePG(t *testing.T, lite string) {
	dsn, dir := pgtest.Shared(t).Database(t), t.TempDir()
	alone := newLiteCmd(t, linkAlone(t, lite, ""), dir)
	for _, args := range [][]string{{"server", "--unix", filepath.Join(dir, "ks.sock"), "--storage", dsn},
		{"server", "migrate", "--storage", dsn}, {"init", "--insecure-no-passphrase", "--storage", dsn}} {
		if r := alone.run(nil, args...); r.code != exitNoFull || len(r.stdout) != 0 {
			t.Errorf("keystack %s without %s: exit %d, stdout %q, want %d and none\n%s", strings.Join(args, " "), fullName, r.code, r.stdout, exitNoFull, r.stderr)
		}
	}
	alone.env = append(alone.env, storageEnv+"="+dsn)
	if r := alone.run([]byte("data"), "encrypt", "-k", "k"); r.code != exitNoFull || len(r.stdout) != 0 {
		t.Errorf("keystack encrypt with $%s set, without %s: exit %d, stdout %q, want %d and none\n%s", storageEnv, fullName, r.code, r.stdout, exitNoFull, r.stderr)
	}
	st, err := pgstorage.Open(context.Background(), dsn, pgstorage.Options{})
	if err == nil {
		st.Close()
	}
	if !errors.Is(err, pgstorage.ErrSchemaOutdated) {
		t.Fatalf("the database after the failed hand-offs: %v, want ErrSchemaOutdated (no migration applied)", err)
	}
	ks := newLiteCmd(t, lite, dir)
	ks.ok(nil, "init", "--insecure-no-passphrase", "--storage", dsn)
	ks.env = append(ks.env, storageEnv+"="+dsn)
	ks.ok(nil, "key", "create", "k")
	ks.roundTrip(1000, []string{"-k", "k"}, nil)
	if out := ks.ok(nil, "server", "migrate"); !bytes.Contains(out, []byte("already current")) {
		t.Errorf("server migrate after init: %q, want the schema already current", out)
	}
}

// testLiteStatic: the lite build is static, built without cgo (no
// dynamic loader to start, no libc); the complete one links cgo, for
// PKCS#11.
func testLiteStatic(t *testing.T, lite, full string) {
	for _, b := range []struct {
		bin    string
		static bool
	}{{lite, true}, {full, false}} {
		f, err := elf.Open(b.bin)
		if err != nil {
			t.Fatal(err)
		}
		interp := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
		f.Close()
		info, err := buildinfo.ReadFile(b.bin)
		if err != nil {
			t.Fatal(err)
		}
		cgo := slices.Contains(info.Settings, debug.BuildSetting{Key: "CGO_ENABLED", Value: "1"})
		if interp == b.static || cgo == b.static {
			t.Errorf("%s: ELF interpreter %v, CGO_ENABLED=1 %v, want both %v", filepath.Base(b.bin), interp, cgo, !b.static)
		}
	}
}

// testLitePKCS11Store: a command on a keystore that lists a pkcs11 key
// is handed to keystack-full when the keystore opens, whatever the key
// it uses: without keystack-full it exits 7 having written nothing.
func testLitePKCS11Store(t *testing.T, lite string) {
	dir := t.TempDir()
	ks := initLite(t, lite, dir)
	ks.ok(nil, "key", "create", "local")
	alone := liteCmd{t: t, bin: linkAlone(t, lite, ""), env: ks.env}
	alone.ok([]byte("data"), "encrypt", "-k", "local", "-o", filepath.Join(dir, "before.ks"))
	ks.ok(nil, "key", "create", "hsm", "--backend", "pkcs11", "--pkcs11-uri", "pkcs11:token=T;object=k") // no token needed
	out := filepath.Join(dir, "after.ks")
	if r := alone.run([]byte("data"), "encrypt", "-k", "local", "-o", out); r.code != exitNoFull || len(r.stdout) != 0 {
		t.Errorf("encrypt -k local over a store with a pkcs11 key, without %s: exit %d, stdout %q, want %d and none\n%s",
			fullName, r.code, r.stdout, exitNoFull, r.stderr)
	}
	if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed hand-off left its output: %v", err)
	}
	ks.roundTrip(1000, []string{"-k", "local"}, nil)
}

// testLiteKillHandOff: SIGKILL at any moment of an encryption that the
// lite build hands to keystack-full (before the exec, in it, in the full
// build's work) leaves no temporary file and no partial output, only a
// whole message or nothing; the store and its audit log stay intact.
func testLiteKillHandOff(t *testing.T, lite string) {
	dir := t.TempDir()
	ks := initLite(t, lite, dir)
	ks.ok(nil, "key", "create", "local")
	ks.ok(nil, "key", "create", "hsm", "--backend", "pkcs11", "--pkcs11-uri", "pkcs11:token=T;object=k") // makes every command hand off
	plain := make([]byte, 4<<20)
	rand.Read(plain)
	in, outDir := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(outDir, "in.ks")
	killedIn := map[string]int{} // the program the kill met: keystack, keystack-full
	// Delays grow by 0.5 ms until kills have met both builds (the
	// moment of the exec moves with the machine's load), at least 40 runs.
	for i := 0; i < 40 || (i < 200 && (killedIn[filepath.Base(lite)] == 0 || killedIn[fullName] == 0)); i++ {
		cmd := exec.Command(lite, "encrypt", "-k", "local", "-i", in, "-o", out, "--force")
		cmd.Env = ks.env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i) * 500 * time.Microsecond) // from before the exec to past the work
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		_ = cmd.Process.Kill()
		if err := cmd.Wait(); err != nil && exe != "" {
			killedIn[filepath.Base(exe)]++
		}
		entries, err := os.ReadDir(outDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "in.ks" {
				t.Fatalf("kill after %d ms left %s", i, e.Name())
			}
			if got := ks.ok(nil, "decrypt", "-i", out, "-o", "-"); !bytes.Equal(got, plain) {
				t.Fatalf("kill after %d ms left an output that decrypts to %d bytes, not the %d encrypted", i, len(got), len(plain))
			}
		}
	}
	if killedIn[filepath.Base(lite)] == 0 || killedIn[fullName] == 0 {
		t.Errorf("kills met %v; want both builds met at least once", killedIn)
	}
	ks.ok(nil, "audit", "verify")
	ks.roundTrip(1000, []string{"-k", "local"}, nil)
}

// testLiteHSM: on a SoftHSM2 token, keystack hsm, key create --generate,
// -k naming a token key and a keystore auto-unsealed by one all work
// through keystack-full (the lite build fails every PKCS#11 call), and
// without it the sealed keystore is not opened.
func testLiteHSM(t *testing.T, lite string) {
	if why := softhsmMissing(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s", why)
		}
		t.Skip(why)
	}
	dir := t.TempDir()
	conf, _, err := newSoftHSMToken(filepath.Join(dir, "softhsm"), "T")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"SOFTHSM2_CONF=" + conf, envPKCS11Module + "=" + testPKCS11Module(), "KEYSTACK_PKCS11_PIN=" + testTokenPIN}
	ks := initLite(t, lite, dir, env...)
	for _, label := range []string{"k1", "seal"} {
		ks.ok(nil, "hsm", "keygen", "--pkcs11-uri", "pkcs11:token=T", "--label", label)
	}
	if list := ks.ok(nil, "hsm", "list", "--pkcs11-uri", "pkcs11:token=T"); !bytes.Contains(list, []byte("k1")) {
		t.Errorf("hsm list after hsm keygen k1:\n%s", list)
	}
	ks.ok(nil, "key", "create", "gen", "--backend", "pkcs11", "--pkcs11-uri", "pkcs11:token=T", "--generate")
	ks.roundTrip(100<<10, []string{"-k", "gen"}, nil)
	// A keystore with no pkcs11 key: -k alone hands off; then its seal.
	sealed := newLiteCmd(t, lite, t.TempDir(), append(env, "KEYSTACK_PASSPHRASE=pass")...)
	sealed.ok(nil, "init")
	uri := []string{"-k", "pkcs11:token=T;object=k1"}
	sealed.roundTrip(1000, uri, uri)
	sealed.ok(nil, "seal", "set", "pkcs11:token=T;object=seal")
	sealed.ok(nil, "key", "create", "local")
	sealed.roundTrip(1000, []string{"-k", "local"}, nil)
	alone := liteCmd{t: t, bin: linkAlone(t, lite, ""), env: sealed.env}
	if r := alone.run(nil, "key", "list"); r.code != exitNoFull || len(r.stdout) != 0 {
		t.Errorf("key list on a keystore sealed by a token key, without %s: exit %d, stdout %q, want %d and none\n%s",
			fullName, r.code, r.stdout, exitNoFull, r.stderr)
	}
}

// testLiteNSSUser: an OS user /etc/passwd does not list, whose name only
// the C library's NSS lookup of keystack-full may find, is handed off
// before the keystore is created and before argfiles are read; with
// keystack-full the command works.
func testLiteNSSUser(t *testing.T, lite string) {
	if os.Getuid() != 0 {
		t.Skip("running as a user /etc/passwd lacks needs root")
	}
	uid := 54321
	for ; ; uid++ {
		if _, err := user.LookupId(strconv.Itoa(uid)); err != nil {
			break
		}
	}
	// t.TempDir and the binaries' directory are root's alone: link the
	// binaries into a directory that user may search.
	dir, err := os.MkdirTemp("", "keystack-nss-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pair, alone, home := filepath.Join(dir, "pair"), filepath.Join(dir, "alone"), filepath.Join(dir, "home")
	full := filepath.Join(filepath.Dir(lite), fullName)
	err = errors.Join(os.Chmod(dir, 0o755), os.Mkdir(pair, 0o755), os.Mkdir(alone, 0o755), os.Mkdir(home, 0o700), os.Chown(home, uid, uid))
	for _, l := range [][2]string{{lite, filepath.Join(pair, "keystack")}, {full, filepath.Join(pair, fullName)}, {lite, filepath.Join(alone, "keystack")}} {
		err = errors.Join(err, os.Link(l[0], l[1]))
	}
	if err != nil {
		t.Fatal(err)
	}
	ks := newLiteCmd(t, filepath.Join(alone, "keystack"), home)
	ks.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	if r := ks.run(nil, "init", "--insecure-no-passphrase"); r.code != exitNoFull {
		t.Errorf("init as uid %d without %s: exit %d, want %d\n%s", uid, fullName, r.code, exitNoFull, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(home, "home")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed hand-off of init left a keystore: %v", err)
	}
	// Handed off before argfiles are read: keystack-full expands them (a ~
	// in them with the home NSS gives), so a missing one is its error.
	if r := ks.run(nil, "@"+filepath.Join(dir, "missing.args")); r.code != exitNoFull {
		t.Errorf("an argfile as uid %d without %s: exit %d, want %d (read before the hand-off?)\n%s", uid, fullName, r.code, exitNoFull, r.stderr)
	}
	ks.bin = filepath.Join(pair, "keystack")
	ks.ok(nil, "init", "--insecure-no-passphrase")
	ks.ok(nil, "key", "create", "k")
	ks.roundTrip(1000, []string{"-k", "k"}, nil)
}

// startLiteServer runs keystack server with args until the test ends,
// returning once it listens.
func startLiteServer(t *testing.T, ks liteCmd, args ...string) {
	t.Helper()
	startLite(t, ks, "keystack server listening", append([]string{"server"}, args...)...)
}

// startLite runs a long-running command (server, rotate daemon) until the
// test ends, returning it and the first line of its stderr holding ready
// once it logged that.
func startLite(t *testing.T, ks liteCmd, ready string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(ks.bin, args...)
	cmd.Env = ks.env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), ready) {
				lines <- sc.Text()
				break
			}
		}
		close(lines)
		io.Copy(io.Discard, stderr)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("keystack %s ended before logging %q", strings.Join(args, " "), ready)
		}
		return cmd, line
	case <-time.After(30 * time.Second):
		t.Fatalf("keystack %s did not log %q within 30s", strings.Join(args, " "), ready)
	}
	return nil, ""
}

// TestHandOffMarker: the marker of a hand-off is taken out of the
// environment, so that nothing this process starts inherits it, and
// remembered (a lite build refuses to hand off again, the complete one
// does not repeat the lite build's warning).
func TestHandOffMarker(t *testing.T) {
	t.Setenv(envHandedOff, "1")
	defer func() { handedOff = false }()
	takeHandOffMarker()
	if _, set := os.LookupEnv(envHandedOff); set || !handedOff {
		t.Fatalf("after takeHandOffMarker: $%s still set %v, handedOff %v", envHandedOff, set, handedOff)
	}
}
