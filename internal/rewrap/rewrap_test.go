package rewrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/msgtree"
	"github.com/keystack/keystack/keyring"
)

// keyFor returns a raw AES keyring named like a keystack key version; the
// same name always gives the same material, so tests can reopen keys.
func keyFor(t testing.TB, name string) envelope.Keyring {
	t.Helper()
	material := bytes.Repeat([]byte(name+"."), 32)[:32]
	kr, err := keyring.NewRawAES(keyring.ProviderLocal, name, material)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func writeMessage(t testing.TB, path string, kr envelope.Keyring, suite envelope.Suite, frame, size int) []byte {
	t.Helper()
	return writeMessageContext(t, path, kr, suite, frame, size, map[string]string{"app": "rotation-test"})
}

func writeMessageContext(t testing.TB, path string, kr envelope.Keyring, suite envelope.Suite, frame, size int, ec map[string]string) []byte {
	t.Helper()
	pt := make([]byte, size)
	rand.Read(pt)
	msg, err := envelope.EncryptBytes(context.Background(), pt, kr, envelope.EncryptOptions{
		Suite: suite, FrameLength: frame, Context: ec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, msg, 0o640); err != nil {
		t.Fatal(err)
	}
	return pt
}

func decryptFile(t testing.TB, path string, kr envelope.Keyring) ([]byte, error) {
	t.Helper()
	msg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pt, _, err := envelope.DecryptBytes(context.Background(), msg, kr, envelope.DecryptOptions{})
	return pt, err
}

func headerLen(t testing.TB, msg []byte) int {
	t.Helper()
	h, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return h.HeaderLength
}

// signedFooterLen is the footer of a SuiteCommittedSigned message: u16
// length and a fixed-length 103-byte P-384 signature.
const signedFooterLen = 2 + 103

func TestRewrapKeepsBodyBytes(t *testing.T) {
	old, next := keyFor(t, "app/v1"), keyFor(t, "app/v2")
	for _, suite := range []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteCommittedSigned} {
		for _, frame := range []int{1, 512, 4096, 65536} {
			t.Run(suite.String()+"/"+strconv.Itoa(frame), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "m.ks")
				pt := writeMessage(t, path, old, suite, frame, 3*frame+7)
				before, _ := os.ReadFile(path)
				res := RewrapFile(context.Background(), path, RewrapOptions{From: old, To: next})
				if res.Outcome != Rewrapped {
					t.Fatalf("outcome %+v", res)
				}
				after, _ := os.ReadFile(path)
				footer := 0
				if suite.Signed() {
					footer = signedFooterLen
				}
				ob, nb := before[headerLen(t, before):len(before)-footer], after[headerLen(t, after):len(after)-footer]
				if !bytes.Equal(ob, nb) {
					t.Fatal("body bytes changed")
				}
				if res.InPlace == suite.Signed() {
					t.Fatalf("in place = %v for %v", res.InPlace, suite)
				}
				if got, err := decryptFile(t, path, next); err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("decrypt with the new key: %v", err)
				}
				if _, err := decryptFile(t, path, old); !errors.Is(err, envelope.ErrNoDecryptKey) {
					t.Fatalf("old key still decrypts: %v", err)
				}
				oh, _ := envelope.Inspect(bytes.NewReader(before), envelope.InspectOptions{})
				nh, _ := envelope.Inspect(bytes.NewReader(after), envelope.InspectOptions{})
				if !bytes.Equal(oh.MessageID, nh.MessageID) {
					t.Fatal("message ID changed")
				}
			})
		}
	}
}

func TestRewrapNewFileWhenHeaderGrows(t *testing.T) {
	old, next := keyFor(t, "app/v1"), keyFor(t, "a-much-longer-key-name/v2")
	path := filepath.Join(t.TempDir(), "m.ks")
	pt := writeMessage(t, path, old, envelope.SuiteCommitted, 1024, 5000)
	before, _ := os.ReadFile(path)
	res := RewrapFile(context.Background(), path, RewrapOptions{From: old, To: next})
	if res.Outcome != Rewrapped || res.InPlace {
		t.Fatalf("outcome %+v", res)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before[headerLen(t, before):], after[headerLen(t, after):]) {
		t.Fatal("body bytes changed")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v not kept", fi.Mode().Perm())
	}
	if got, err := decryptFile(t, path, next); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt: %v", err)
	}
	assertNoScratch(t, filepath.Dir(path))
}

func assertNoScratch(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if msgtree.IsScratch(e.Name()) {
			t.Fatalf("scratch file left: %s", e.Name())
		}
	}
}

// TestRewrapCrashAtEveryStep kills the rewrap (no cleanup runs) at each
// step of the three write paths (journaled in place, direct in place for
// headers of one sector, new file): the file must still decrypt, under the
// old or the new key, and the next run must finish the job.
func TestRewrapCrashAtEveryStep(t *testing.T) {
	old := keyFor(t, "app/v1")
	big := map[string]string{"app": strings.Repeat("x", 600)} // header > one sector: journaled
	small := map[string]string{"app": "x"}
	cases := map[string]struct {
		step string
		next envelope.Keyring
		ec   map[string]string
	}{
		"journal/journal-written": {"journal-written", keyFor(t, "app/v2"), big},
		"journal/header-written":  {"header-written", keyFor(t, "app/v2"), big},
		"sector/header-written":   {"header-written", keyFor(t, "app/v2"), small},
		"new-file/temp-written":   {"temp-written", keyFor(t, "longer-name/v2"), small},
		"new-file/renamed":        {"renamed", keyFor(t, "longer-name/v2"), small},
	}
	for name, c := range cases {
		step, next := c.step, c.next
		t.Run(name, func(t *testing.T) {
			either := keyring.NewMulti(old, next)
			dir := t.TempDir()
			path := filepath.Join(dir, "m.ks")
			pt := writeMessageContext(t, path, old, envelope.SuiteCommitted, 256, 2000, c.ec)
			crashed := false
			crashAt = func(s string) bool { crashed = crashed || s == step; return s == step }
			defer func() { crashAt = nil }()
			RewrapFile(context.Background(), path, RewrapOptions{From: old, To: next})
			if !crashed {
				t.Fatalf("step %s never reached", step)
			}
			if got, err := decryptFile(t, path, either); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("after a crash at %s the file does not decrypt: %v", step, err)
			}
			crashAt = nil
			sum, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: either, To: next})
			if err != nil || len(sum.Failed) != 0 {
				t.Fatalf("resume: %+v %v", sum, err)
			}
			res := RewrapFile(context.Background(), path, RewrapOptions{From: either, To: next})
			if res.Outcome == Failed {
				t.Fatalf("resume: %+v", res)
			}
			if got, err := decryptFile(t, path, next); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("after resuming, new key: %v", err)
			}
			assertNoScratch(t, filepath.Dir(path))
		})
	}
}

func TestRewrapTreeMixedDryRunAndResume(t *testing.T) {
	ctx := context.Background()
	old, next := keyFor(t, "app/v1"), keyFor(t, "app/v2")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755)
	var msgs []string
	for i, p := range []string{"a.ks", "sub/b.ks", "sub/deeper/c.ks", "sub/d.ks"} {
		path := filepath.Join(dir, p)
		writeMessage(t, path, old, envelope.SuiteCommitted, 100, 50*i)
		msgs = append(msgs, path)
	}
	junk := map[string][]byte{"notes.txt": []byte("hello"), "sub/empty": nil, "sub/deeper/fake.ks": []byte("\x02\x04\x78garbage")}
	for p, data := range junk {
		os.WriteFile(filepath.Join(dir, p), data, 0o644)
	}
	targets := []keyring.EDKInfo{{ProviderID: keyring.ProviderLocal, KeyName: "app/v2"}}
	dry, err := RewrapPaths(ctx, []string{dir}, RewrapOptions{From: old, To: next, Targets: targets, DryRun: true})
	if err != nil || len(dry.Rewrapped) != 4 || len(dry.Skipped) != 3 || len(dry.Failed) != 0 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if _, err := decryptFile(t, msgs[0], old); err != nil {
		t.Fatal("dry run changed a file")
	}
	// An interrupted run did two files; the next run finishes the rest.
	for _, p := range msgs[:2] {
		RewrapFile(ctx, p, RewrapOptions{From: old, To: next})
	}
	var progress int
	sum, err := RewrapPaths(ctx, []string{dir}, RewrapOptions{From: old, To: next, Targets: targets, Workers: 3,
		Progress: func(done, total int) { progress = done }})
	if err != nil || len(sum.Rewrapped) != 2 || len(sum.Skipped) != 5 || len(sum.Failed) != 0 || progress != 7 {
		t.Fatalf("resume: %+v %v progress %d", sum, err, progress)
	}
	for _, p := range msgs {
		if _, err := decryptFile(t, p, next); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	for p, data := range junk {
		if got, _ := os.ReadFile(filepath.Join(dir, p)); !bytes.Equal(got, data) {
			t.Fatalf("non-message %s modified", p)
		}
	}
}

func TestRewrapFailsWithoutTheOldKey(t *testing.T) {
	old, next, stranger := keyFor(t, "app/v1"), keyFor(t, "app/v2"), keyFor(t, "other/v1")
	path := filepath.Join(t.TempDir(), "m.ks")
	writeMessage(t, path, old, envelope.SuiteCommitted, 100, 300)
	before, _ := os.ReadFile(path)
	res := RewrapFile(context.Background(), path, RewrapOptions{From: stranger, To: next})
	if res.Outcome != Failed || !strings.Contains(res.Reason, "no master key") {
		t.Fatalf("outcome %+v", res)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("failed rewrap modified the file")
	}
}
