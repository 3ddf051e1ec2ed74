package keystore

import (
	"crypto/rsa"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keyring/keyringtest"
)

func rsaTestKey(t *testing.T, i int) *rsa.PrivateKey { return keyringtest.RSAKey(t, i) }

// newTestAES is a raw AES keyring under a fresh random key, standing in for
// an external backend's key.
func newTestAES(t *testing.T, name string, size int) envelope.Keyring {
	t.Helper()
	kr, err := keyring.NewRawAES("keystoretest", name, mustRandom(t, size))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func mustRandom(t *testing.T, n int) []byte {
	b, err := randomKey(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
