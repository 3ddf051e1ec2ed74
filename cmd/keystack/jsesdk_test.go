package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// The official AWS Encryption SDK for JavaScript (npm @aws-crypto/client-node,
// pinned by interop/jsesdk/package-lock.json) against the keystack CLI.
// scripts/test-prereqs.sh installs it into a cache directory outside the Go
// module (scripts/jsesdk-install.sh); interop/jsesdk/esdk.js runs batches of
// its encrypt and decrypt jobs, one node process per batch.

// jsesdk is the installed SDK: the node binary, the directory holding its
// node_modules, and the driver script.
type jsesdk struct{ node, modules, script string }

// findJSESDK locates node and the installed SDK. It skips the test when
// either is missing, except under CI=true where that is a failure.
func findJSESDK(t *testing.T) jsesdk {
	t.Helper()
	// go test runs in the package directory, cmd/keystack.
	src, err := filepath.Abs(filepath.Join("..", "..", "interop", "jsesdk"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := jsesdkInstallDir(src)
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@aws-crypto", "client-node", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("JavaScript ESDK interop: node or the SDK in %s is missing (%v); "+
			"run scripts/test-prereqs.sh (make test does) with node and npm on PATH", dir, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return jsesdk{node: node, modules: dir, script: filepath.Join(src, "esdk.js")}
}

// jsesdkInstallDir is where scripts/jsesdk-install.sh installs the SDK:
// $KEYSTACK_JSESDK_DIR, else the user cache dir, keyed by the lock file.
func jsesdkInstallDir(src string) (string, error) {
	if dir := os.Getenv("KEYSTACK_JSESDK_DIR"); dir != "" {
		return dir, nil
	}
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		return "", err
	}
	base := os.Getenv("XDG_CACHE_HOME")
	switch {
	case runtime.GOOS == "darwin":
		base = filepath.Join(os.Getenv("HOME"), "Library", "Caches")
	case base == "":
		base = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	sum := sha256.Sum256(lock)
	return filepath.Join(base, "keystack-test", "jsesdk", hex.EncodeToString(sum[:])[:16]), nil
}

// jsKey is a master key known to both sides under the same ESDK names.
type jsKey struct {
	Type      string `json:"type"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	File      string `json:"file"`
	Padding   string `json:"padding,omitempty"`
	size      int    // AES key bytes
}

// jsJob is one encrypt or decrypt by the JavaScript SDK (see esdk.js).
type jsJob struct {
	Op            string            `json:"op"`
	Keys          []string          `json:"keys"`
	In            string            `json:"in"`
	Out           string            `json:"out"`
	Suite         uint16            `json:"suite,omitempty"`
	FrameLength   int               `json:"frameLength,omitempty"`
	Context       map[string]string `json:"context,omitempty"`
	Legacy        bool              `json:"legacy,omitempty"`
	LocaleSorting bool              `json:"localeSorting,omitempty"`
}

// jsResult is the header the SDK wrote or parsed, or its error.
type jsResult struct {
	OK          bool              `json:"ok"`
	Error       string            `json:"error"`
	Suite       uint16            `json:"suite"`
	FrameLength int               `json:"frameLength"`
	Context     map[string]string `json:"context"`
	Version     int               `json:"version"`
}

// jsFixture is a keystore and the same keys as JavaScript keyrings.
type jsFixture struct {
	sdk  jsesdk
	work string
	home string // the keystore directory (--home)
	keys map[string]jsKey
}

// ks runs the CLI in process on the fixture's keystore (runKeystack).
func (f *jsFixture) ks(args ...string) (int, string, string) {
	return runKeystack(append([]string{"--home", f.home}, args...)...)
}

// mustKS is ks failing t unless the CLI exits 0.
func (f *jsFixture) mustKS(t *testing.T, args ...string) {
	t.Helper()
	keystack(t, append([]string{"--home", f.home}, args...)...)
}

// The ESDK key names under which the JavaScript keyrings and the imported
// keystack keys (named by the map key) meet.
var jsKeySpecs = map[string]jsKey{
	"aes-128":     {Type: "aes", Name: "aes-128", size: 16},
	"aes-192":     {Type: "aes", Name: "aes-192", size: 24},
	"aes-256":     {Type: "aes", Name: "aes-256", size: 32},
	"rsa-sha1":    {Type: "rsa", Name: "rsa-oaep-sha1", Padding: "oaep-sha1"},
	"rsa-sha256":  {Type: "rsa", Name: "rsa-oaep-sha256", Padding: "oaep-sha256"},
	"rsa-sha384":  {Type: "rsa", Name: "rsa-oaep-sha384", Padding: "oaep-sha384"},
	"rsa-sha512":  {Type: "rsa", Name: "rsa-oaep-sha512", Padding: "oaep-sha512"},
	"rsa-pkcs1":   {Type: "rsa", Name: "rsa-pkcs1", Padding: "pkcs1"},
	"aes-256-bmp": {Type: "aes", Name: "kek 🔑 ünïcode", size: 32},
}

// newJSFixture creates a passphrase-less keystore (the passphrase plays no
// part in interop) and imports the keys that the JavaScript keyrings read
// from the same files.
func newJSFixture(t *testing.T) *jsFixture {
	sdk := findJSESDK(t)
	material, err := jsKeyMaterial()
	if err != nil {
		t.Fatal(err)
	}
	work := memTempDir(t)
	f := &jsFixture{sdk: sdk, work: work, home: filepath.Join(work, "home"), keys: map[string]jsKey{}}
	f.mustKS(t, "init", "--insecure-no-passphrase")
	for id, k := range jsKeySpecs {
		k.Namespace = "keystack-interop"
		k.File = filepath.Join(work, id+".key")
		writeKeyFile(t, k.File, material[id])
		argv := []string{"key", "import", id, "--namespace", k.Namespace, "--key-name", k.Name}
		if k.Type == "aes" {
			argv = append(argv, "--aes-key-file", k.File)
		} else {
			argv = append(argv, "--rsa-private-key-file", k.File, "--rsa-padding", k.Padding)
		}
		f.mustKS(t, argv...)
		f.keys[id] = k
	}
	return f
}

// memTempDir is a temporary directory in memory (/dev/shm) where the
// machine has one, else t.TempDir. The interop tests check message bytes
// and exit codes, not durability; on a disk, the fsyncs of the hundreds
// of commands they run in process (the keystore's audit anchor) take most
// of their time.
func memTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "keystack-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// jsKeyMaterial is fresh key material per test process, shared by the
// tests because RSA key generation is slow: base64 AES keys, PKCS#8 PEM
// RSA keys.
var jsKeyMaterial = sync.OnceValues(func() (map[string]string, error) {
	m := map[string]string{}
	for id, k := range jsKeySpecs {
		if k.Type == "aes" {
			b := make([]byte, k.size)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			m[id] = base64.StdEncoding.EncodeToString(b)
			continue
		}
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		m[id] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	return m, nil
})

func writeKeyFile(t *testing.T, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// jsEncrypt has the JavaScript SDK encrypt a plaintext of each case
// (seeded from seed on) and returns the jobs, the plaintexts and the
// results, one per case.
func (f *jsFixture) jsEncrypt(t *testing.T, cases []jsCase, seed uint64) ([]jsJob, [][]byte, []jsResult) {
	t.Helper()
	jobs := make([]jsJob, len(cases))
	plain := make([][]byte, len(cases))
	for i, c := range cases {
		var in string
		in, plain[i] = f.plaintext(t, c.name, seed+uint64(i), c.size)
		jobs[i] = jsJob{Op: "encrypt", Keys: c.keys, In: in, Out: filepath.Join(f.work, c.name+".js"),
			Suite: c.suite, FrameLength: c.frame, Context: c.ec}
	}
	return jobs, plain, f.runJS(t, jobs)
}

// runJS runs jobs in one node process and returns one result per job.
func (f *jsFixture) runJS(t *testing.T, jobs []jsJob) []jsResult {
	t.Helper()
	spec, err := json.Marshal(map[string]any{"keys": f.keys, "jobs": jobs})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.work, "jobs.json")
	if err := os.WriteFile(path, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(f.sdk.node, f.sdk.script, f.sdk.modules, path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node esdk.js: %v\n%s", err, stderr.String())
	}
	var res []jsResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(jobs) {
		t.Fatalf("node esdk.js: %d results for %d jobs (%v)\n%s", len(res), len(jobs), err, out)
	}
	return res
}

// inProcess lets one in-process CLI run at a time: urfave/cli writes to
// the flag definitions (package variables, shared by every run) as it
// parses. Tests running the CLI in process may run in parallel with
// those running it as a child process.
var inProcess sync.Mutex

// runKeystack runs the CLI in process exactly as main does and returns its
// exit code, stdout and stderr.
func runKeystack(args ...string) (int, string, string) {
	inProcess.Lock()
	defer inProcess.Unlock()
	var stdout, stderr bytes.Buffer
	app := newApp()
	app.Reader, app.Writer, app.ErrWriter = strings.NewReader(""), &stdout, &stderr
	code := runApp(app, append([]string{"keystack"}, args...))
	return code, stdout.String(), stderr.String()
}

// plaintext writes n deterministic pseudo-random bytes for case seed.
func (f *jsFixture) plaintext(t *testing.T, name string, seed uint64, n int) (string, []byte) {
	data := make([]byte, n)
	mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7}).Read(data)
	path := filepath.Join(f.work, name+".pt")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// sameFile fails unless path holds exactly want.
func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d-byte plaintext", filepath.Base(path), len(got), len(want))
	}
}

func contextArgs(ec map[string]string) []string {
	var argv []string
	for k, v := range ec {
		argv = append(argv, "-c", k+"="+v)
	}
	return argv
}

// jsContexts are the encryption contexts of the round trips. The non-BMP
// keys sort differently in UTF-16 or locale order (😀 first) and in the
// UTF-8 byte order the message format requires (Ａ first).
var jsContexts = []struct {
	name string
	ec   map[string]string
}{
	{"empty", nil},
	{"ordinary", map[string]string{"tenant": "acme", "purpose": "interop test", "expr": "a=b"}},
	{"nonbmp", map[string]string{"Ａ": "𝄞 clef", "😀": "🎵🎶", "plain": "𝒳 and ascii"}},
}

// jsKeySets are the master keys of the round trips; the first of a set
// generates the data key, every key wraps it.
var jsKeySets = []struct {
	name string
	keys []string
}{
	{"aes", []string{"aes-256"}},
	{"rsa", []string{"rsa-sha256"}},
	{"multi", []string{"aes-256", "rsa-sha512", "aes-128"}},
}

// jsCase is one round trip of the matrix.
type jsCase struct {
	name          string
	suite         uint16
	frame, size   int
	ec            map[string]string
	keys          []string
	defaultFrames bool // keystack writes without --frame-size
}

const (
	suiteCommitted       = 0x0478
	suiteCommittedSigned = 0x0578
)

// jsMatrix is every committing suite × frame length × size at the frame
// edges × context × key set.
func jsMatrix() []jsCase {
	var cases []jsCase
	for _, suite := range []uint16{suiteCommitted, suiteCommittedSigned} {
		for _, frame := range []int{4096, 1, envelope.DefaultFrameLength} {
			for _, size := range frameEdgeSizes(frame) {
				for _, ec := range jsContexts {
					for _, ks := range jsKeySets {
						cases = append(cases, jsCase{
							name:  fmt.Sprintf("%04x-frame%d-size%d-%s-%s", suite, frame, size, ec.name, ks.name),
							suite: suite, frame: frame, size: size, ec: ec.ec, keys: ks.keys,
							defaultFrames: frame == envelope.DefaultFrameLength,
						})
					}
				}
			}
		}
	}
	return cases
}

// frameEdgeSizes is 0, 1 and the sizes around one and two frames.
func frameEdgeSizes(frame int) []int {
	var sizes []int
	seen := map[int]bool{}
	for _, n := range []int{0, 1, frame - 1, frame, frame + 1, 2 * frame} {
		if !seen[n] {
			seen[n] = true
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// checkJSHeader fails unless the SDK's view of a message is c's.
func checkJSHeader(t *testing.T, c jsCase, r jsResult) {
	t.Helper()
	if !r.OK {
		t.Fatalf("JavaScript ESDK: %s", r.Error)
	}
	if r.Version != 2 || r.Suite != c.suite || r.FrameLength != c.frame {
		t.Fatalf("JavaScript ESDK header: version %d suite %#04x frame %d, want 2 %#04x %d",
			r.Version, r.Suite, r.FrameLength, c.suite, c.frame)
	}
	checkContext(t, "JavaScript ESDK", c.suite, r.Context, c.ec)
}

// publicKeyContextKey holds the verification key of signed suites.
const publicKeyContextKey = "aws-crypto-public-key"

// checkContext fails unless got is want plus, for a signed suite only,
// the public key.
func checkContext(t *testing.T, who string, suite uint16, got, want map[string]string) {
	t.Helper()
	_, hasKey := got[publicKeyContextKey]
	if signed := suite == suiteCommittedSigned; hasKey != signed {
		t.Fatalf("%s context %q: public key present %v, want %v", who, got, hasKey, signed)
	}
	rest := maps.Clone(got)
	delete(rest, publicKeyContextKey)
	if !sameContext(rest, want) {
		t.Fatalf("%s context %q, want %q", who, got, want)
	}
}

func sameContext(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// decryptMeta is the part of "keystack decrypt --json" the tests check.
type decryptMeta struct {
	Version     int               `json:"version"`
	SuiteID     string            `json:"suite_id"`
	FrameLength int               `json:"frame_length"`
	Context     map[string]string `json:"encryption_context"`
}

// ksDecrypt decrypts msg with the CLI (extra: more flags such as -k) and
// fails unless it exits 0 with exactly want and reports the context.
func (f *jsFixture) ksDecrypt(t *testing.T, msg string, ec map[string]string, want []byte, extra ...string) decryptMeta {
	t.Helper()
	out := msg + ".out"
	argv := append([]string{"decrypt", "--json", "--force", "-i", msg, "-o", out}, contextArgs(ec)...)
	code, stdout, stderr := f.ks(append(argv, extra...)...)
	if code != 0 {
		t.Fatalf("keystack %s: exit %d\n%s", strings.Join(argv, " "), code, stderr)
	}
	sameFile(t, out, want)
	var meta decryptMeta
	if err := json.Unmarshal([]byte(stdout), &meta); err != nil {
		t.Fatalf("decrypt --json: %v\n%s", err, stdout)
	}
	return meta
}

// TestJSESDK runs the interop tests with the official JavaScript ESDK
// one after another, since they run the CLI in process and such runs go
// one at a time (runKeystack), and in parallel with the tests that run it
// as a child process.
func TestJSESDK(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"WritesKeystackReads", testJSWritesKeystackReads},
		{"KeystackWritesReads", testKeystackWritesJSReads},
		{"LegacySuites", testJSLegacySuites},
		{"EveryKeyType", testJSEveryKeyType},
		{"TamperedRejected", testJSTamperedRejected},
		{"ContextSortingAndRequiredKeys", testJSContextSortingAndRequiredKeys},
	} {
		t.Run(tc.name, tc.test)
	}
}

// TestJSESDK/WritesKeystackReads: every message of the matrix the
// JavaScript SDK writes decrypts byte-exact with the CLI, with each of its
// master keys alone and with the whole keystore.
func testJSWritesKeystackReads(t *testing.T) {
	f := newJSFixture(t)
	cases := jsMatrix()
	jobs, plain, res := f.jsEncrypt(t, cases, 0)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkJSHeader(t, c, res[i])
			meta := f.ksDecrypt(t, jobs[i].Out, c.ec, plain[i])
			checkContext(t, "keystack", c.suite, meta.Context, c.ec)
			if meta.Version != 2 || meta.SuiteID != fmt.Sprintf("0x%04x", c.suite) || meta.FrameLength != c.frame {
				t.Fatalf("keystack reads version %d suite %s frame %d", meta.Version, meta.SuiteID, meta.FrameLength)
			}
			for _, k := range c.keys[min(1, len(c.keys)-1):] {
				f.ksDecrypt(t, jobs[i].Out, c.ec, plain[i], "-k", k)
			}
		})
	}
}

// TestJSESDK/KeystackWritesReads: every message of the matrix the CLI
// writes decrypts byte-exact with the JavaScript SDK, with each master key
// alone, and the SDK sees the suite, frame length and context asked for.
func testKeystackWritesJSReads(t *testing.T) {
	f := newJSFixture(t)
	var jobs []jsJob
	var owner []int
	cases := jsMatrix()
	plain := make([][]byte, len(cases))
	for i, c := range cases {
		var in string
		in, plain[i] = f.plaintext(t, c.name, uint64(i), c.size)
		msg := filepath.Join(f.work, c.name+".ks")
		argv := append([]string{"encrypt", "-i", in, "-o", msg}, contextArgs(c.ec)...)
		for _, k := range c.keys {
			argv = append(argv, "-k", k)
		}
		if c.suite == suiteCommittedSigned {
			argv = append(argv, "--signed")
		}
		if !c.defaultFrames {
			argv = append(argv, "--frame-size", fmt.Sprint(c.frame))
		}
		f.mustKS(t, argv...)
		for j, k := range c.keys {
			jobs = append(jobs, jsJob{Op: "decrypt", Keys: []string{k}, In: msg, Out: fmt.Sprintf("%s.%d.out", msg, j)})
			owner = append(owner, i)
		}
	}
	res := f.runJS(t, jobs)
	for j, job := range jobs {
		c := cases[owner[j]]
		t.Run(c.name+"/"+job.Keys[0], func(t *testing.T) {
			checkJSHeader(t, c, res[j])
			sameFile(t, job.Out, plain[owner[j]])
		})
	}
}

// jsLegacySuites are the nine non-committing message format v1 suites.
var jsLegacySuites = []uint16{0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378}

// TestJSESDK/LegacySuites: messages the JavaScript SDK writes with every
// non-committing suite are refused without --allow-legacy (exit 3, no
// output, a hint naming the flag) and decrypt byte-exact with it.
func testJSLegacySuites(t *testing.T) {
	f := newJSFixture(t)
	ec := jsContexts[1].ec
	var jobs []jsJob
	var plain [][]byte
	for i, suite := range jsLegacySuites {
		for j, keys := range [][]string{{"aes-256"}, {"rsa-sha256", "aes-192"}} {
			name := fmt.Sprintf("legacy-%04x-%d", suite, j)
			in, data := f.plaintext(t, name, uint64(1000+i), []int{0, 5000}[j])
			plain = append(plain, data)
			jobs = append(jobs, jsJob{Op: "encrypt", Keys: keys, In: in, Out: filepath.Join(f.work, name+".js"),
				Suite: suite, FrameLength: 4096, Context: ec, Legacy: true})
		}
	}
	res := f.runJS(t, jobs)
	for i, job := range jobs {
		t.Run(filepath.Base(job.Out), func(t *testing.T) {
			if !res[i].OK || res[i].Version != 1 || res[i].Suite != job.Suite {
				t.Fatalf("JavaScript ESDK wrote %+v, want version 1 suite %#04x", res[i], job.Suite)
			}
			out := job.Out + ".out"
			code, _, stderr := f.ks(append([]string{"decrypt", "-i", job.Out, "-o", out}, contextArgs(ec)...)...)
			if code != exitAuth || !strings.Contains(stderr, "--allow-legacy") {
				t.Fatalf("without --allow-legacy: exit %d, want %d and a hint naming the flag\n%s", code, exitAuth, stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("a refused message left %s (%v)", out, err)
			}
			meta := f.ksDecrypt(t, job.Out, ec, plain[i], "--allow-legacy")
			if meta.Version != 1 || meta.SuiteID != fmt.Sprintf("0x%04x", job.Suite) {
				t.Fatalf("keystack reads version %d suite %s", meta.Version, meta.SuiteID)
			}
		})
	}
}

// TestJSESDK/EveryKeyType: each key type alone both ways: AES-128/192/256
// (one with a non-BMP key name), RSA-OAEP with SHA-1/256/384/512, and
// RSA PKCS#1 v1.5, which keystack reads but refuses to write.
func testJSEveryKeyType(t *testing.T) {
	f := newJSFixture(t)
	ec := jsContexts[2].ec
	in, data := f.plaintext(t, "keytypes", 77, 10000)
	var jobs []jsJob
	for _, id := range sortedKeys(jsKeySpecs) {
		js := filepath.Join(f.work, id+".js")
		jobs = append(jobs, jsJob{Op: "encrypt", Keys: []string{id}, In: in, Out: js,
			Suite: suiteCommittedSigned, FrameLength: 4096, Context: ec})
		if id == "rsa-pkcs1" {
			continue
		}
		ks := filepath.Join(f.work, id+".ks")
		f.mustKS(t, append([]string{"encrypt", "-k", id, "-i", in, "-o", ks, "--frame-size", "4096"}, contextArgs(ec)...)...)
		jobs = append(jobs, jsJob{Op: "decrypt", Keys: []string{id}, In: ks, Out: ks + ".js.out"})
	}
	res := f.runJS(t, jobs)
	for i, job := range jobs {
		t.Run(filepath.Base(job.In)+"-"+job.Op, func(t *testing.T) {
			if !res[i].OK {
				t.Fatalf("JavaScript ESDK: %s", res[i].Error)
			}
			if job.Op == "decrypt" {
				sameFile(t, job.Out, data)
				return
			}
			f.ksDecrypt(t, job.Out, ec, data, "-k", job.Keys[0])
		})
	}
	code, _, stderr := f.ks("encrypt", "-k", "rsa-pkcs1", "-i", in, "-o", filepath.Join(f.work, "pkcs1.ks"))
	if code != exitKey || !strings.Contains(stderr, "decryption only") {
		t.Fatalf("encrypt with an RSA PKCS#1 v1.5 key: exit %d, want %d and why\n%s", code, exitKey, stderr)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// TestJSESDK/TamperedRejected: messages the JavaScript SDK writes, with one
// bit flipped at every offset, cut short at every 7th length, or with a
// byte appended, are each rejected with exit 3 and leave no output. The
// untouched messages decrypt, so the rejections are the tampering's.
func testJSTamperedRejected(t *testing.T) {
	f := newJSFixture(t)
	cases := []jsCase{
		{name: "tamper-unsigned-aes", suite: suiteCommitted, frame: 1, size: 3, ec: jsContexts[1].ec, keys: []string{"aes-256"}},
		{name: "tamper-signed-multi", suite: suiteCommittedSigned, frame: 64, size: 65, ec: jsContexts[2].ec,
			keys: []string{"aes-256", "rsa-sha256"}},
	}
	jobs, plain, res := f.jsEncrypt(t, cases, 2000)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkJSHeader(t, c, res[i])
			f.ksDecrypt(t, jobs[i].Out, c.ec, plain[i])
			msg, err := os.ReadFile(jobs[i].Out)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tamperedVariants(msg) {
				f.mustReject(t, v.what, v.data, c.ec)
			}
		})
	}
}

type tampered struct {
	what string
	data []byte
}

// tamperedVariants flips bit i%8 of every byte i, cuts at every 7th length
// and appends a byte.
func tamperedVariants(msg []byte) []tampered {
	var vs []tampered
	for i := range msg {
		d := bytes.Clone(msg)
		d[i] ^= 1 << (i % 8)
		vs = append(vs, tampered{fmt.Sprintf("bit %d of byte %d flipped", i%8, i), d})
	}
	for n := 0; n < len(msg); n += 7 {
		vs = append(vs, tampered{fmt.Sprintf("cut to %d of %d bytes", n, len(msg)), bytes.Clone(msg[:n])})
	}
	return append(vs, tampered{"one byte appended", append(bytes.Clone(msg), 0)})
}

// mustReject fails unless decrypting data exits 3 without an output file,
// and returns keystack's stderr.
func (f *jsFixture) mustReject(t *testing.T, what string, data []byte, ec map[string]string) string {
	t.Helper()
	in, out := filepath.Join(f.work, "tampered.msg"), filepath.Join(f.work, "tampered.out")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := f.ks(append([]string{"decrypt", "-i", in, "-o", out}, contextArgs(ec)...)...)
	if code != exitAuth {
		t.Errorf("%s: exit %d, want %d\n%s", what, code, exitAuth, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("%s: the rejected message left %s (%v)", what, out, err)
	}
	return stderr
}

// TestJSESDK/ContextSortingAndRequiredKeys covers two documented limits of
// the JavaScript SDK 5.0.2, so that a change in either side shows:
//   - its raw AES keyring by default orders the context it authenticates
//     with String.localeCompare (aws-encryption-sdk-javascript issue 428;
//     utf8Sorting: true, used everywhere else here, fixes it). Contexts
//     whose keys sort alike in both orders still decrypt in keystack;
//     others fail to unwrap (exit 3); the SDK's source notes that the other
//     official SDKs fail alike.
//   - it has no required-encryption-context CMM, so it cannot decrypt a
//     message keystack wrote with --required-context: the required pair is
//     authenticated but not stored, and keystack needs it back (-c).
func testJSContextSortingAndRequiredKeys(t *testing.T) {
	f := newJSFixture(t)
	in, data := f.plaintext(t, "limits", 99, 300)
	ordinary, nonBMP := filepath.Join(f.work, "locale-ordinary.js"), filepath.Join(f.work, "locale-nonbmp.js")
	required := filepath.Join(f.work, "required.ks")
	reqEC := map[string]string{"tenant": "acme", "purpose": "interop"}
	f.mustKS(t, append([]string{"encrypt", "-k", "rsa-sha256", "-k", "aes-256", "--required-context", "tenant",
		"-i", in, "-o", required}, contextArgs(reqEC)...)...)
	jobs := []jsJob{
		{Op: "encrypt", Keys: []string{"aes-256"}, In: in, Out: ordinary, Suite: suiteCommitted, FrameLength: 64,
			Context: jsContexts[1].ec, LocaleSorting: true},
		{Op: "encrypt", Keys: []string{"aes-256"}, In: in, Out: nonBMP, Suite: suiteCommitted, FrameLength: 64,
			Context: jsContexts[2].ec, LocaleSorting: true},
		{Op: "decrypt", Keys: []string{"rsa-sha256"}, In: required, Out: required + ".rsa.out"},
		{Op: "decrypt", Keys: []string{"aes-256"}, In: required, Out: required + ".aes.out"},
	}
	res := f.runJS(t, jobs)
	if !res[0].OK || !res[1].OK {
		t.Fatalf("JavaScript ESDK: %+v", res[:2])
	}
	f.ksDecrypt(t, ordinary, jsContexts[1].ec, data)
	raw, err := os.ReadFile(nonBMP)
	if err != nil {
		t.Fatal(err)
	}
	if msg := f.mustReject(t, "context authenticated in locale order", raw, jsContexts[2].ec); !strings.Contains(msg, "the data key under aes-256 did not authenticate with this encryption context") {
		t.Fatalf("locale-ordered context: want the AES unwrap to fail\n%s", msg)
	}
	for _, r := range res[2:] {
		if r.OK {
			t.Fatalf("JavaScript ESDK decrypted a message with a required context key it was not given: %+v", r)
		}
	}
	f.ksDecrypt(t, required, reqEC, data)
}
