package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring/keyringtest"
)

func rsaTestKey(t *testing.T, i int) *rsa.PrivateKey { return keyringtest.RSAKey(t, i) }

func newTestAES(t *testing.T, name string, size int) envelope.Keyring {
	t.Helper()
	key := make([]byte, size)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	kr, err := NewRawAES("keyringtest", name, key)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestRawAESConformance(t *testing.T) {
	for _, size := range []int{16, 24, 32} {
		t.Run(fmt.Sprintf("AES-%d", size*8), func(t *testing.T) {
			keyringtest.RunWithOptions(t,
				func(t *testing.T) envelope.Keyring { return newTestAES(t, "key", size) },
				keyringtest.Options{
					// Same name, different material: the keyring must try and fail.
					OtherKey: func(t *testing.T) envelope.Keyring { return newTestAES(t, "key", size) },
				})
		})
	}
}

func newTestRSA(t *testing.T, padding RSAPadding, i int, public bool) envelope.Keyring {
	t.Helper()
	priv := rsaTestKey(t, i)
	var kr envelope.Keyring
	var err error
	if public {
		kr, err = NewRawRSA("keyringtest", "rsa", padding, &priv.PublicKey, nil)
	} else {
		kr, err = NewRawRSA("keyringtest", "rsa", padding, nil, priv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestRawRSAConformance(t *testing.T) {
	for _, p := range []RSAPadding{RSAOAEPSHA1, RSAOAEPSHA256, RSAOAEPSHA384, RSAOAEPSHA512} {
		t.Run(string(p), func(t *testing.T) {
			keyringtest.RunWithOptions(t,
				func(t *testing.T) envelope.Keyring { return newTestRSA(t, p, 0, false) },
				keyringtest.Options{
					IgnoresContext: true, // ESDK raw RSA EDKs do not bind the context
					OtherKey:       func(t *testing.T) envelope.Keyring { return newTestRSA(t, p, 1, false) },
				})
		})
	}
}

func TestRawRSAPublicOnlyConformance(t *testing.T) {
	keyringtest.RunWithOptions(t,
		func(t *testing.T) envelope.Keyring { return newTestRSA(t, RSAOAEPSHA256, 0, true) },
		keyringtest.Options{
			EncryptOnly:    true,
			IgnoresContext: true,
			Decrypter:      func(t *testing.T) envelope.Keyring { return newTestRSA(t, RSAOAEPSHA256, 0, false) },
			OtherKey:       func(t *testing.T) envelope.Keyring { return newTestRSA(t, RSAOAEPSHA256, 1, false) },
		})
}

func TestMultiKeyringConformance(t *testing.T) {
	newMulti := func(t *testing.T) envelope.Keyring {
		return NewMulti(newTestAES(t, "gen", 32), newTestAES(t, "child", 16), newTestRSA(t, RSAOAEPSHA256, 0, false))
	}
	t.Run("AES+RSA", func(t *testing.T) {
		keyringtest.RunWithOptions(t, newMulti, keyringtest.Options{
			// The RSA child ignores the context, so a wrong context still unwraps.
			IgnoresContext: true,
			OtherKey: func(t *testing.T) envelope.Keyring {
				return NewMulti(newTestAES(t, "gen", 32), newTestAES(t, "child", 16))
			},
		})
	})
	t.Run("AES", func(t *testing.T) {
		keyringtest.Run(t, func(t *testing.T) envelope.Keyring {
			return NewMulti(newTestAES(t, "gen", 32), newTestAES(t, "child", 24))
		})
	})
}

// TestRawRSAPKCS1ReadOnly: PKCS#1 v1.5 EDKs written by other ESDK users
// unwrap; keystack refuses to write new ones.
func TestRawRSAPKCS1ReadOnly(t *testing.T) {
	ctx := context.Background()
	kr := newTestRSA(t, RSAPKCS1, 0, false)
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted}
	if err := kr.OnEncrypt(ctx, m); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("PKCS#1 v1.5 wrap: got %v, want ErrNotSupported", err)
	}
	dk := bytes.Repeat([]byte{7}, 32)
	//lint:ignore SA1019 the test plays another ESDK user writing a PKCS#1 v1.5 EDK
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &rsaTestKey(t, 0).PublicKey, dk)
	if err != nil {
		t.Fatal(err)
	}
	edk := envelope.EncryptedDataKey{ProviderID: "keyringtest", ProviderInfo: []byte("rsa"), Ciphertext: ct}
	dm := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted}
	if err := kr.OnDecrypt(ctx, dm, []envelope.EncryptedDataKey{edk}); err != nil || !bytes.Equal(dm.DataKey, dk) {
		t.Fatalf("PKCS#1 v1.5 unwrap: %v", err)
	}
	// A corrupted EDK yields no error oracle: either a refusal or a random
	// key, never the real one.
	ct[len(ct)/2] ^= 1
	dm = &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted}
	if err := kr.OnDecrypt(ctx, dm, []envelope.EncryptedDataKey{edk}); err == nil && bytes.Equal(dm.DataKey, dk) {
		t.Fatal("corrupted PKCS#1 v1.5 EDK unwrapped to the real key")
	}
}
