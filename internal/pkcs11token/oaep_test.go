package pkcs11token

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"
)

// rawDecrypt is textbook RSA, what CKM_RSA_X_509 computes on a token.
func rawDecrypt(priv *rsa.PrivateKey, ct []byte) []byte {
	m := new(big.Int).Exp(new(big.Int).SetBytes(ct), priv.D, priv.N)
	return m.FillBytes(make([]byte, priv.Size()))
}

func TestOAEPDecodeSHA256(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k := priv.Size()
	for _, n := range []int{0, 16, 32, k - 2*sha256.Size - 2} {
		msg := bytes.Repeat([]byte{0xA5}, n)
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		em := rawDecrypt(priv, ct)
		got, err := oaepDecodeSHA256(em, k)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%d-byte message: %x, %v", n, got, err)
		}
		// Leading zero bytes dropped by a token are restored.
		if got, err := oaepDecodeSHA256(bytes.TrimLeft(em, "\x00"), k); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%d-byte message without leading zeros: %v", n, err)
		}
	}
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, []byte("key"), nil)
	em := rawDecrypt(priv, ct)
	labeled, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, []byte("key"), []byte("label"))
	bad := map[string][]byte{
		"nonzero first byte": append([]byte{1}, em[1:]...),
		"flipped seed":       flip(em, 5),
		"flipped lHash area": flip(em, 1+sha256.Size+3),
		"flipped last byte":  flip(em, k-1),
		"other label":        rawDecrypt(priv, labeled),
		"too long":           append([]byte{0}, em...),
		"all zero":           make([]byte, k),
	}
	for name, in := range bad {
		if _, err := oaepDecodeSHA256(in, k); !errors.Is(err, errOAEP) {
			t.Errorf("%s: %v, want errOAEP", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func FuzzOAEPDecodeSHA256(f *testing.F) {
	f.Add(make([]byte, 256))
	f.Add(bytes.Repeat([]byte{1}, 256))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, em []byte) {
		// Random input must fail cleanly, never panic.
		_, _ = oaepDecodeSHA256(em, 256)
	})
}
