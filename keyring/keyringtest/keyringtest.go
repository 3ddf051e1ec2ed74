// Package keyringtest is the conformance suite every envelope.Keyring
// backend runs: raw keyrings, the local store, AWS KMS, PKCS#11.
//
// A backend's test calls [Run] (or [RunWithOptions]) with a constructor:
//
//	func TestConformance(t *testing.T) {
//		keyringtest.Run(t, func(t *testing.T) envelope.Keyring { return newTestKeyring(t) })
//	}
//
// The suite checks the envelope.Keyring contract and the ESDK keyring rules
// (aws-encryption-sdk-specification, framework/keyring-interface.md): data
// keys of each suite's length, random generation, wrapping a caller's key,
// context binding, refusing foreign, corrupted and oversized EDKs with an
// error wrapping envelope.ErrNoDecryptKey, leaving decided materials alone,
// and safe concurrent use.
package keyringtest

import (
	"testing"

	"github.com/keystack/keystack/envelope"
)

// Options adapts the suite to a backend's documented limits.
type Options struct {
	// OtherKey returns a keyring of the same backend holding a different
	// master key. Without it the OtherKey subtest is skipped (visibly).
	OtherKey func(t *testing.T) envelope.Keyring
	// IgnoresContext declares that the backend does not bind the encryption
	// context to its EDKs (ESDK raw RSA). The WrongContext subtest then
	// asserts that decryption still succeeds instead of failing.
	IgnoresContext bool
	// EncryptOnly declares a keyring that can wrap but never unwrap (an RSA
	// public key). Decrypt subtests then assert that OnDecrypt fails with
	// envelope.ErrNoDecryptKey; round trips use Decrypter when set.
	EncryptOnly bool
	// Decrypter, with EncryptOnly, returns a keyring able to unwrap what
	// newKeyring's keyrings wrap (the matching private key).
	Decrypter func(t *testing.T) envelope.Keyring
	// SkipConcurrency skips the concurrent round-trip subtest.
	SkipConcurrency bool
	// Suites overrides the suites round-tripped: by default 0x0478, 0x0014
	// and 0x0046, for data keys of 32, 16 and 24 bytes.
	Suites []envelope.Suite
}

// Defaults for the suite's bounded loops.
const (
	concurrentWorkers = 16
	concurrentRounds  = 50
	// maxFlips bounds the corrupted-EDK subtest: at most this many byte
	// positions are flipped per EDK field, spread over its whole length.
	maxFlips = 64
	// oversize is the junk appended to an EDK ciphertext in OversizedEDK.
	oversize = 64 << 10
	// foreignProvider is the provider ID of EDKs no backend may claim.
	foreignProvider = "keyringtest-foreign"
)

// defaultSuites have data keys of 32, 16 and 24 bytes: the committed
// suite and two legacy v1 ones, AES_128_GCM_IV12_TAG16_NO_KDF and
// AES_192_GCM_IV12_TAG16_NO_KDF.
var defaultSuites = []envelope.Suite{
	envelope.SuiteCommitted, envelope.Suite(0x0014), envelope.Suite(0x0046),
}

// Run runs the conformance suite with default options: the backend binds the
// encryption context and can decrypt what it encrypts. newKeyring is called
// once per subtest; each call may return a keyring with a fresh key.
func Run(t *testing.T, newKeyring func(t *testing.T) envelope.Keyring) {
	t.Helper()
	RunWithOptions(t, newKeyring, Options{})
}

// RunWithOptions runs the conformance suite as adapted by opts.
func RunWithOptions(t *testing.T, newKeyring func(t *testing.T) envelope.Keyring, opts Options) {
	t.Helper()
	s := &suite{newKeyring: newKeyring, opts: opts}
	if len(s.opts.Suites) == 0 {
		s.opts.Suites = defaultSuites
	}
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("GeneratedKey", s.testGeneratedKey)
	t.Run("CallerDataKey", s.testCallerDataKey)
	t.Run("KeepsExistingEDKs", s.testKeepsExistingEDKs)
	t.Run("WrongContext", s.testWrongContext)
	t.Run("SuiteMismatch", s.testSuiteMismatch)
	t.Run("OtherKey", s.testOtherKey)
	t.Run("CorruptedEDK", s.testCorruptedEDK)
	t.Run("OversizedEDK", s.testOversizedEDK)
	t.Run("ForeignEDKs", s.testForeignEDKs)
	t.Run("DataKeyAlreadySet", s.testDataKeyAlreadySet)
	t.Run("NoEDKs", s.testNoEDKs)
	t.Run("CanceledContext", s.testCanceledContext)
	t.Run("EncryptOnly", s.testEncryptOnly)
	t.Run("Concurrent", s.testConcurrent)
}

type suite struct {
	newKeyring func(t *testing.T) envelope.Keyring
	opts       Options
}

// pair returns the keyring under test and the keyring that unwraps its EDKs,
// skipping the subtest when an encrypt-only backend offers no decrypter.
func (s *suite) pair(t *testing.T) (enc, dec envelope.Keyring) {
	t.Helper()
	enc = s.newKeyring(t)
	if !s.opts.EncryptOnly {
		return enc, enc
	}
	if s.opts.Decrypter == nil {
		t.Skip("encrypt-only backend without Options.Decrypter: nothing can unwrap its EDKs")
	}
	return enc, s.opts.Decrypter(t)
}

func testContext(tag string) map[string]string {
	return map[string]string{"purpose": "keyringtest", "case": tag, "unicode": "ключ-🔑"}
}
