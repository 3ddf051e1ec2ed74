package keystore

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore/keystoretest"
)

// testRSAKeys holds two 2048-bit key pairs, generated once: the smallest
// size the raw RSA keyring accepts keeps the suite fast.
var testRSAKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
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

func rsaTestKey(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := testRSAKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[i]
}

func newTestAES(t *testing.T, name string, size int) *RawAESKeyring {
	t.Helper()
	key := make([]byte, size)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	kr, err := NewRawAESKeyring("keystoretest", name, key)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestRawAESConformance(t *testing.T) {
	for _, size := range []int{16, 24, 32} {
		t.Run(fmt.Sprintf("AES-%d", size*8), func(t *testing.T) {
			keystoretest.RunWithOptions(t,
				func(t *testing.T) envelope.Keyring { return newTestAES(t, "key", size) },
				keystoretest.Options{
					// Same name, different material: the keyring must try and fail.
					OtherKey: func(t *testing.T) envelope.Keyring { return newTestAES(t, "key", size) },
				})
		})
	}
}

func newTestRSA(t *testing.T, padding RSAPadding, i int, public bool) envelope.Keyring {
	t.Helper()
	priv := rsaTestKey(t, i)
	var kr *RawRSAKeyring
	var err error
	if public {
		kr, err = NewRawRSAKeyring("keystoretest", "rsa", padding, &priv.PublicKey, nil)
	} else {
		kr, err = NewRawRSAKeyring("keystoretest", "rsa", padding, nil, priv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestRawRSAConformance(t *testing.T) {
	for _, p := range []RSAPadding{RSAOAEPSHA1, RSAOAEPSHA256, RSAOAEPSHA384, RSAOAEPSHA512, RSAPKCS1} {
		t.Run(string(p), func(t *testing.T) {
			keystoretest.RunWithOptions(t,
				func(t *testing.T) envelope.Keyring { return newTestRSA(t, p, 0, false) },
				keystoretest.Options{
					IgnoresContext: true, // ESDK raw RSA EDKs do not bind the context
					OtherKey:       func(t *testing.T) envelope.Keyring { return newTestRSA(t, p, 1, false) },
				})
		})
	}
}

func TestRawRSAPublicOnlyConformance(t *testing.T) {
	keystoretest.RunWithOptions(t,
		func(t *testing.T) envelope.Keyring { return newTestRSA(t, RSAOAEPSHA256, 0, true) },
		keystoretest.Options{
			EncryptOnly:    true,
			IgnoresContext: true,
			Decrypter:      func(t *testing.T) envelope.Keyring { return newTestRSA(t, RSAOAEPSHA256, 0, false) },
			OtherKey:       func(t *testing.T) envelope.Keyring { return newTestRSA(t, RSAOAEPSHA256, 1, false) },
		})
}

func TestMultiKeyringConformance(t *testing.T) {
	newMulti := func(t *testing.T) envelope.Keyring {
		return NewMultiKeyring(newTestAES(t, "gen", 32), newTestAES(t, "child", 16), newTestRSA(t, RSAOAEPSHA256, 0, false))
	}
	t.Run("AES+RSA", func(t *testing.T) {
		keystoretest.RunWithOptions(t, newMulti, keystoretest.Options{
			// The RSA child ignores the context, so a wrong context still unwraps.
			IgnoresContext: true,
			OtherKey: func(t *testing.T) envelope.Keyring {
				return NewMultiKeyring(newTestAES(t, "gen", 32), newTestAES(t, "child", 16))
			},
		})
	})
	t.Run("AES", func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) envelope.Keyring {
			return NewMultiKeyring(newTestAES(t, "gen", 32), newTestAES(t, "child", 24))
		})
	})
}
