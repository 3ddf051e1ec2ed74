package keyringtest

import (
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
)

// rsaKeys holds two 2048-bit key pairs, generated once per test binary: the
// smallest size the raw RSA keyring accepts keeps the suites fast.
var rsaKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

// RSAKey returns test key pair i (0 or 1), the same within one test binary.
func RSAKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[i]
}
