package keyring_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keyring/keyringtest"
)

// TestCachingKeyringConformance runs the shared keyring suite on caching
// keyrings over raw AES. The suite requires two encrypts with one context to
// produce different data keys, which a reusing cache deliberately does not;
// so the encrypt path runs with MaxMessages 1 (every call goes through the
// cache and makes a fresh key) and, separately, with MaxBytes set, where the
// suite's unknown-length encrypts bypass the cache. Decrypts are cached in both.
func TestCachingKeyringConformance(t *testing.T) {
	newAES := func(t *testing.T) envelope.Keyring {
		key := make([]byte, 32)
		rand.Read(key)
		kr, err := keyring.NewRawAES("keyringtest", "cached", key)
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	for name, opts := range map[string]keyring.CacheOptions{
		"MaxMessages1": {MaxAge: time.Hour, MaxMessages: 1},
		"MaxBytes":     {MaxAge: time.Hour, MaxBytes: 1 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			newCaching := func(t *testing.T) envelope.Keyring {
				c, err := keyring.NewCaching(newAES(t), opts)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			keyringtest.RunWithOptions(t, newCaching, keyringtest.Options{
				OtherKey: newCaching,
				// KDF suites, which the cache serves, plus one identity-KDF
				// suite, which it must pass through.
				Suites: []envelope.Suite{envelope.SuiteCommitted, envelope.Suite(0x0114),
					envelope.Suite(0x0146), envelope.Suite(0x0014)},
			})
		})
	}
}
