package pkcs11token

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/rawaes"
	"github.com/miekg/pkcs11"
)

const benchLabel = "bench-aes"

// benchToken opens the main test token with a pool of poolSize sessions
// and returns it with the benchmark AES keyring.
func benchToken(b *testing.B, poolSize int) (*Token, *AESKeyring) {
	b.Helper()
	tok := openToken(b, tokenMain, Options{PoolSize: poolSize})
	if got := tok.Stats().Size; got != poolSize {
		b.Fatalf("pool of %d sessions, want %d (token already open elsewhere in the process)", got, poolSize)
	}
	ctx := context.Background()
	if err := tok.GenerateAESKey(ctx, benchLabel, nil); err != nil && !errors.Is(err, ErrKeyExists) {
		b.Fatal(err)
	}
	kr, err := tok.AESKeyring(ctx, benchLabel)
	if err != nil {
		b.Fatal(err)
	}
	return tok, kr
}

func BenchmarkHSMWrap(b *testing.B) {
	b.Run("OneSession", func(b *testing.B) {
		_, kr := benchToken(b, 1)
		for b.Loop() {
			benchWrap(b, kr)
		}
	})
	b.Run("Pool", func(b *testing.B) {
		_, kr := benchToken(b, defaultPoolSize)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				benchWrap(b, kr)
			}
		})
	})
}

func benchWrap(b *testing.B, kr *AESKeyring) *envelope.EncryptionMaterials {
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: testContext}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		b.Error(err)
	}
	return m
}

func BenchmarkHSMUnwrap(b *testing.B) {
	b.Run("OneSession", func(b *testing.B) {
		_, kr := benchToken(b, 1)
		m := benchWrap(b, kr)
		for b.Loop() {
			benchUnwrap(b, kr, m)
		}
	})
	b.Run("Pool", func(b *testing.B) {
		_, kr := benchToken(b, defaultPoolSize)
		m := benchWrap(b, kr)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				benchUnwrap(b, kr, m)
			}
		})
	})
}

func benchUnwrap(b *testing.B, kr *AESKeyring, m *envelope.EncryptionMaterials) {
	dm := &envelope.DecryptionMaterials{Suite: m.Suite, EncryptionContext: testContext}
	if err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err != nil {
		b.Error(err)
	}
}

// BenchmarkRawCEncrypt is the floor for BenchmarkHSMWrap/OneSession:
// C_EncryptInit + C_Encrypt of a 32-byte key with CKM_AES_GCM on one session
// and the same token key, without the keyring and pool around it.
func BenchmarkRawCEncrypt(b *testing.B) {
	tok, _ := benchToken(b, 1)
	dk, iv := make([]byte, 32), make([]byte, rawaes.IVLen)
	rand.Read(dk)
	aad := []byte("benchmark aad")
	err := tok.run(context.Background(), func(s session) error {
		h, err := tok.findKey(s, TypeSecretKey, benchLabel, nil)
		if err != nil {
			return err
		}
		c := tok.st.mod.ctx
		for i := uint64(0); b.Loop(); i++ {
			binary.BigEndian.PutUint64(iv[4:], i) // never reuse an IV, even in a benchmark
			params := pkcs11.NewGCMParams(iv, aad, rawaes.TagBits)
			if err := c.EncryptInit(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
				return err
			}
			_, err := c.Encrypt(s.h, dk)
			params.Free()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
