package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keystack/keystack/internal/kmstest"
)

const kmsTestRegion = "us-east-1"

// kmsFixture is a kmstest server on loopback with two keys and an alias,
// created through the real SDK.
type kmsFixture struct {
	srv                 *kmstest.Server
	key1, key2, alias1  string // ARNs
	accountID, endpoint string
}

// kmsTestEnv starts a kmsFixture for t and sets the environment that
// points keystack at it, with a new directory for the test's files.
func kmsTestEnv(t *testing.T) (*kmsFixture, string) {
	t.Helper()
	f, err := newKMSFixture()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Close)
	dir := t.TempDir()
	for k, v := range f.env(dir) {
		t.Setenv(k, v)
	}
	return f, dir
}

func newKMSFixture() (*kmsFixture, error) {
	srv := kmstest.NewServer()
	admin := kms.NewFromConfig(aws.Config{
		Region:      kmsTestRegion,
		Credentials: credentials.NewStaticCredentialsProvider(kmstest.AccessKeyID, kmstest.SecretAccessKey, ""),
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	ctx := context.Background()
	f := &kmsFixture{srv: srv, accountID: kmstest.DefaultAccountID, endpoint: srv.URL()}
	for _, arn := range []*string{&f.key1, &f.key2} {
		out, err := admin.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			srv.Close()
			return nil, err
		}
		*arn = aws.ToString(out.KeyMetadata.Arn)
	}
	if _, err := admin.CreateAlias(ctx, &kms.CreateAliasInput{
		AliasName: aws.String("alias/keystack-test"), TargetKeyId: aws.String(f.key1),
	}); err != nil {
		srv.Close()
		return nil, err
	}
	f.alias1 = fmt.Sprintf("arn:aws:kms:%s:%s:alias/keystack-test", kmsTestRegion, f.accountID)
	return f, nil
}

// env is what keystack needs to reach the server with the test
// credentials, and never the developer's AWS configuration or EC2 metadata.
func (f *kmsFixture) env(dir string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_KMS":        f.endpoint,
		"AWS_ACCESS_KEY_ID":           kmstest.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       kmstest.SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  kmsTestRegion,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "no-aws-credentials"),
		"KMS_KEY_ARN":                 f.key1,
		"KMS_KEY2_ARN":                f.key2,
		"KMS_ALIAS_ARN":               f.alias1,
		"KMS_ACCOUNT":                 f.accountID,
	}
}

// kmsServers maps a running script to its server, for "kms calls";
// kmsHangs maps it to its "kms hang" listener.
var kmsServers, kmsHangs sync.Map

// hangListener accepts TCP connections on loopback and never answers:
// KMS that takes requests and never replies. It counts the connections.
type hangListener struct {
	ln    net.Listener
	conns atomic.Int32
	mu    sync.Mutex
	held  []net.Conn
}

func newHangListener() (*hangListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hangListener{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.conns.Add(1)
			h.mu.Lock()
			h.held = append(h.held, c) // held open, never read or answered
			h.mu.Unlock()
		}
	}()
	return h, nil
}

func (h *hangListener) Close() {
	h.ln.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.held {
		c.Close()
	}
}

// deadURL is a loopback URL where nothing listens: a port just freed.
func deadURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return "http://" + addr, ln.Close()
}

// cmdKMS runs "kms start": a kmstest server for the rest of the script,
// with $KMS_KEY_ARN, $KMS_KEY2_ARN, $KMS_ALIAS_ARN and $KMS_ACCOUNT set;
// "kms calls OP N", which fails unless the server saw N OP requests;
// "kms hang", a listener at $KMS_HANG_URL that accepts and never answers;
// "kms hangconns N", which fails unless it took N connections; and
// "kms dead", $KMS_DEAD_URL where nothing listens; "kms deny KEY", after
// which KMS refuses every use of KEY (AccessDeniedException).
func cmdKMS(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: kms start | kms calls OP N | kms requests OP [KEY...] | kms rotation KEY DAYS | kms deny KEY | kms hang | kms hangconns N | kms dead"
	if neg || len(args) == 0 {
		ts.Fatalf(usage)
	}
	switch {
	case args[0] == "hang" && len(args) == 1:
		h, err := newHangListener()
		ts.Check(err)
		ts.Defer(h.Close)
		kmsHangs.Store(ts, h)
		ts.Setenv("KMS_HANG_URL", "http://"+h.ln.Addr().String())
	case args[0] == "hangconns" && len(args) == 2:
		h, ok := kmsHangs.Load(ts)
		if !ok {
			ts.Fatalf("kms hangconns: run kms hang first")
		}
		want, err := strconv.Atoi(args[1])
		ts.Check(err)
		if got := h.(*hangListener).conns.Load(); int(got) != want {
			ts.Fatalf("kms hang listener took %d connections, want %d", got, want)
		}
	case args[0] == "dead" && len(args) == 1:
		u, err := deadURL()
		ts.Check(err)
		ts.Setenv("KMS_DEAD_URL", u)
	case args[0] == "start" && len(args) == 1:
		f, err := newKMSFixture()
		ts.Check(err)
		ts.Defer(f.srv.Close)
		for k, v := range f.env(ts.MkAbs(".")) {
			ts.Setenv(k, v)
		}
		kmsServers.Store(ts, f.srv)
	case args[0] == "calls" && len(args) == 3:
		srv, ok := kmsServers.Load(ts)
		if !ok {
			ts.Fatalf("kms calls: no server (run kms start first)")
		}
		want, err := strconv.Atoi(args[2])
		ts.Check(err)
		if got := srv.(*kmstest.Server).Calls(args[1]); got != want {
			ts.Fatalf("kms: %d %s calls, want %d", got, args[1], want)
		}
	case args[0] == "requests" && len(args) >= 2:
		kmsRequests(ts, scriptKMS(ts), args[1], args[2:])
	case args[0] == "deny" && len(args) == 2:
		scriptKMS(ts).DenyKey(args[1])
	case args[0] == "rotation" && len(args) == 3:
		kmsRotation(ts, scriptKMS(ts), args[1], args[2])
	default:
		ts.Fatalf(usage)
	}
}

// TestCacheRecursiveKMS encrypts a tree of 20 files in process against
// kmstest: with --cache-max-messages 10 the data key comes from KMS twice,
// without the cache once per file; decrypting the cached tree unwraps each
// distinct EDK once.
func TestCacheRecursiveKMS(t *testing.T) {
	f, dir := kmsTestEnv(t)
	home, in := filepath.Join(dir, "home"), filepath.Join(dir, "in")
	if err := os.MkdirAll(filepath.Join(in, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		name := filepath.Join(in, fmt.Sprintf("f%02d.txt", i))
		if i%2 == 1 {
			name = filepath.Join(in, "sub", fmt.Sprintf("f%02d.txt", i))
		}
		if err := os.WriteFile(name, bytes.Repeat([]byte{byte(i)}, 100+i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runOK(t, "--home", home, "init", "--insecure-no-passphrase")

	cache := []string{"--cache-max-age", "1m", "--cache-max-messages", "10"}
	runOK(t, append([]string{"--home", home, "encrypt", "-q", "-k", f.key1, "--recursive", in,
		"--output-dir", filepath.Join(dir, "cached")}, cache...)...)
	if got := f.srv.Calls("GenerateDataKey"); got != 2 {
		t.Errorf("cached encrypt of 20 files: %d GenerateDataKey calls, want 2", got)
	}
	runOK(t, "--home", home, "encrypt", "-q", "-k", f.key1, "--recursive", in, "--output-dir", filepath.Join(dir, "uncached"))
	if got := f.srv.Calls("GenerateDataKey"); got != 2+20 {
		t.Errorf("uncached encrypt of 20 files: %d more GenerateDataKey calls, want 20", got-2)
	}

	// Files are 100..119 bytes, so a 240-byte limit lets each data key
	// cover exactly two files: the CLI declares every file's length.
	runOK(t, "--home", home, "encrypt", "-q", "-k", f.key1, "--recursive", in, "--output-dir", filepath.Join(dir, "bytes"),
		"--cache-max-age", "1m", "--cache-max-bytes", "240")
	if got := f.srv.Calls("GenerateDataKey"); got != 22+10 {
		t.Errorf("encrypt of 20 files with --cache-max-bytes 240: %d GenerateDataKey calls, want 10", got-22)
	}

	runOK(t, append([]string{"--home", home, "decrypt", "-q", "-k", f.key1, "--recursive", filepath.Join(dir, "cached"),
		"--output-dir", filepath.Join(dir, "out")}, cache...)...)
	if got := f.srv.Calls("Decrypt"); got != 2 {
		t.Errorf("cached decrypt of 20 files under 2 data keys: %d Decrypt calls, want 2", got)
	}
	for i := range 20 {
		rel := fmt.Sprintf("f%02d.txt", i)
		if i%2 == 1 {
			rel = filepath.Join("sub", rel)
		}
		got, err := os.ReadFile(filepath.Join(dir, "out", rel))
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 100+i)) {
			t.Errorf("%s: decrypted content differs (err %v)", rel, err)
		}
	}
}

// runOK runs keystack in process and fails the test unless it exits 0.
func runOK(t *testing.T, args ...string) {
	t.Helper()
	if code, stderr := runCode(args...); code != 0 {
		t.Fatalf("keystack %q: exit %d\nstderr: %s", args, code, stderr)
	}
}

// TestKMSFlags checks that grant tokens reach KMS with every call, that
// --kms-endpoint wins over $AWS_ENDPOINT_URL_KMS, and that a KMS refusal
// while encrypting is a key error (exit 4) that leaves no output.
func TestKMSFlags(t *testing.T) {
	f, dir := kmsTestEnv(t)
	home, plain, msg := filepath.Join(dir, "home"), filepath.Join(dir, "plain"), filepath.Join(dir, "msg.ks")
	if err := os.WriteFile(plain, []byte("grant me"), 0o644); err != nil {
		t.Fatal(err)
	}
	runOK(t, "--home", home, "init", "--insecure-no-passphrase")

	// Nothing listens on port 1: only the flag's endpoint can work.
	t.Setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1")
	runOK(t, "--home", home, "encrypt", "-k", f.key1, "--kms-endpoint", f.endpoint,
		"--grant-token", "gt-a", "--grant-token", "gt-b", "-i", plain, "-o", msg)
	runOK(t, "--home", home, "decrypt", "-k", f.key1, "--kms-endpoint", f.endpoint,
		"--grant-token", "gt-c", "-i", msg, "-o", filepath.Join(dir, "out"))
	for op, want := range map[string]string{"GenerateDataKey": "[gt-a gt-b]", "Decrypt": "[gt-c]"} {
		reqs := f.srv.Requests(op)
		if len(reqs) != 1 || fmt.Sprint(reqs[0].GrantTokens) != want {
			t.Errorf("%s requests %+v, want one with grant tokens %s", op, reqs, want)
		}
	}

	f.srv.DenyKey(f.key2)
	out := filepath.Join(dir, "denied.ks")
	code, stderr := runCode("--home", home, "encrypt", "-k", f.key2, "--kms-endpoint", f.endpoint, "-i", plain, "-o", out)
	if code != exitDenied || !bytes.Contains(stderr, []byte("AccessDeniedException")) {
		t.Errorf("encrypt under a denied key: exit %d, stderr %q; want %d and AccessDeniedException", code, stderr, exitDenied)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("encrypt under a denied key left %s (stat: %v)", out, err)
	}
}

// runCode runs keystack in process and returns its exit code and stderr.
func runCode(args ...string) (int, []byte) {
	app := newApp()
	var stdout, stderr bytes.Buffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	code := runApp(app, append([]string{"keystack"}, args...))
	return code, stderr.Bytes()
}
