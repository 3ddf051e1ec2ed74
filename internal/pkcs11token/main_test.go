package pkcs11token

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// Test tokens live in one temporary SoftHSM2 token directory for the whole
// test binary: SOFTHSM2_CONF is read at C_Initialize, and the module is
// initialized once per process.
const (
	testPIN   = "1234"
	testSOPIN = "12345678"
	tokenMain = "T" // most tests
	tokenPIN  = "W" // wrong-PIN test only: never logged in with the right PIN first
)

var (
	softhsmModule = envOr("KEYSTACK_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
	// softhsmMissing says why SoftHSM2 tests cannot run, or is empty.
	softhsmMissing string
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	os.Unsetenv(pinEnv) // tests choose their PIN source explicitly
	dir, err := os.MkdirTemp("", "keystack-hsm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	softhsmMissing = setupSoftHSM(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setupSoftHSM points SoftHSM2 at a fresh token directory under dir and
// creates the test tokens. It returns why that was impossible, or "".
func setupSoftHSM(dir string) string {
	if _, err := os.Stat(softhsmModule); err != nil {
		return fmt.Sprintf("SoftHSM2 module %s not found (apt-get install softhsm2, or run make test-prereqs)", softhsmModule)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return "softhsm2-util not found in PATH (apt-get install softhsm2)"
	}
	tokens := filepath.Join(dir, "tokens")
	conf := filepath.Join(dir, "softhsm2.conf")
	cfg := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return err.Error()
	}
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return err.Error()
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	for _, label := range []string{tokenMain, tokenPIN} {
		out, err := exec.Command(util, "--init-token", "--free", "--label", label,
			"--so-pin", testSOPIN, "--pin", testPIN).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("softhsm2-util --init-token: %v: %s", err, bytes.TrimSpace(out))
		}
	}
	return ""
}

// requireSoftHSM skips a test that needs SoftHSM2 when it is not installed,
// and fails it instead under CI=true, where a skip would hide lost coverage.
func requireSoftHSM(tb testing.TB) {
	tb.Helper()
	if softhsmMissing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("SoftHSM2 is required under CI=true: %s", softhsmMissing)
	}
	tb.Skipf("skipping PKCS#11 test: %s", softhsmMissing)
}

func tokenURI(label string) *URI {
	return &URI{Token: label, Module: softhsmModule}
}

func pinPrompt(pin string) PINPrompt {
	return func(context.Context, string) (string, error) { return pin, nil }
}

// openToken opens a test token with the right PIN and closes it at cleanup.
func openToken(tb testing.TB, label string, opts Options) *Token {
	tb.Helper()
	requireSoftHSM(tb)
	if opts.Prompt == nil {
		opts.Prompt = pinPrompt(testPIN)
	}
	if label == tokenMain {
		sweepToken(tb)
	}
	tok, err := Open(context.Background(), tokenURI(label), opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", label, err)
	}
	tb.Cleanup(func() {
		if err := tok.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return tok
}

// sweepToken makes a test that creates objects on the main token
// re-runnable in this process. The token lives as long as the test binary
// (TestMain), so with -count=N each test runs N times against it and would
// find its fixed labels taken by its previous run. When tb ends (after the
// cleanups registered later, such as openToken's Close), sweepToken
// destroys every key object whose label was not on the token when it was
// called, except the shared RSA pair, which is made once per process.
func sweepToken(tb testing.TB) {
	tb.Helper()
	requireSoftHSM(tb)
	before := map[string]bool{sharedRSA: true}
	withMainToken(tb, func(tok *Token) error {
		objs, err := tok.ListObjects(context.Background())
		for _, o := range objs {
			before[o.Label] = true
		}
		return err
	})
	tb.Cleanup(func() { withMainToken(tb, func(tok *Token) error { return destroyExcept(tok, before) }) })
}

// withMainToken runs f on a Token of its own for the main test token,
// which it opens for f alone: the test's Tokens may be closed by then.
func withMainToken(tb testing.TB, f func(*Token) error) {
	tb.Helper()
	tok, err := Open(context.Background(), tokenURI(tokenMain), Options{Prompt: pinPrompt(testPIN)})
	if err != nil {
		tb.Fatalf("sweep: Open: %v", err)
	}
	err = f(tok)
	if cerr := tok.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatalf("sweep: %v", err)
	}
}

// destroyExcept destroys every key object on tok whose label keep lacks.
func destroyExcept(tok *Token, keep map[string]bool) error {
	return tok.run(context.Background(), func(s session) error {
		defer tok.st.pool.forgetHandles()
		for _, typ := range []ObjectType{TypeSecretKey, TypePrivateKey, TypePublicKey} {
			hs, err := tok.findObjects(s, typ, "", nil, maxListObjects)
			if err != nil {
				return err
			}
			for _, h := range hs {
				info, err := tok.describe(s, h, typ)
				if err != nil {
					return err
				}
				if keep[info.Label] {
					continue
				}
				if err := tok.st.mod.ctx.DestroyObject(s.h, h); err != nil {
					return callErr("C_DestroyObject", err)
				}
			}
		}
		return nil
	})
}

var (
	rsaOnce  sync.Once
	rsaError error
)

// sharedRSA labels the RSA key pair that sharedRSALabel makes.
const sharedRSA = "shared-rsa"

// sharedRSALabel generates one RSA-3072 key pair for all tests (key
// generation is the slow part) and returns its label.
func sharedRSALabel(tb testing.TB, tok *Token) string {
	tb.Helper()
	rsaOnce.Do(func() {
		rsaError = tok.GenerateRSAKeyPair(context.Background(), sharedRSA, []byte("rsa-1"), 3072)
	})
	if rsaError != nil {
		tb.Fatalf("GenerateRSAKeyPair: %v", rsaError)
	}
	return sharedRSA
}

// newAESKey generates a fresh AES key with a label unique to the test.
func newAESKey(tb testing.TB, tok *Token, label string) *AESKeyring {
	tb.Helper()
	ctx := context.Background()
	if err := tok.GenerateAESKey(ctx, label, []byte(label)); err != nil {
		tb.Fatalf("GenerateAESKey(%q): %v", label, err)
	}
	kr, err := tok.AESKeyring(ctx, label)
	if err != nil {
		tb.Fatalf("AESKeyring(%q): %v", label, err)
	}
	return kr
}

// wrap runs OnEncrypt for a fresh data key and returns the materials.
func wrap(tb testing.TB, kr envelope.Keyring, suite envelope.Suite, ec map[string]string) *envelope.EncryptionMaterials {
	tb.Helper()
	m := &envelope.EncryptionMaterials{Suite: suite, EncryptionContext: ec, PlaintextLength: -1}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		tb.Fatalf("OnEncrypt: %v", err)
	}
	if len(m.DataKey) != suite.DataKeyLen() || len(m.EncryptedDataKeys) == 0 {
		tb.Fatalf("OnEncrypt: %d-byte data key, %d EDKs", len(m.DataKey), len(m.EncryptedDataKeys))
	}
	return m
}

// unwrap runs OnDecrypt over the EDKs of em with context ec.
func unwrap(kr envelope.Keyring, em *envelope.EncryptionMaterials, ec map[string]string) ([]byte, error) {
	dm := &envelope.DecryptionMaterials{Suite: em.Suite, EncryptionContext: ec}
	err := kr.OnDecrypt(context.Background(), dm, em.EncryptedDataKeys)
	return dm.DataKey, err
}
