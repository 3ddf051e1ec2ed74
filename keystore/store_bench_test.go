package keystore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkUnlockDefaultKDF measures the first sealed access of a store
// (one passphrase derivation) at the production argon2id and scrypt costs.
func BenchmarkUnlockDefaultKDF(b *testing.B) {
	for _, p := range []kdfParams{
		{Name: KDFArgon2id, Time: 3, MemoryKiB: 64 << 10, Threads: 2},
		{Name: KDFScrypt, LogN: 15, R: 8, P: 1},
	} {
		b.Run(p.Name, func(b *testing.B) {
			p.Salt = make([]byte, saltLen)
			for b.Loop() {
				kek, err := p.deriveKEK([]byte(testPass))
				if err != nil {
					b.Fatal(err)
				}
				clear(kek)
			}
		})
	}
}

// BenchmarkStoreEncryptKeyring measures building a keyring from an unlocked
// store: read keystore.json, unseal the key, build the raw keyring.
func BenchmarkStoreEncryptKeyring(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "ks")
	s, err := Init(dir, InitOptions{Passphrase: []byte(testPass)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.CreateKey(ctx, "k", CreateKeyOptions{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.EncryptKeyring(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreCreateKey measures one locked read-modify-write of the store.
func BenchmarkStoreCreateKey(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "ks")
	s, err := Init(dir, InitOptions{Passphrase: []byte(testPass)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.CreateKey(ctx, fmt.Sprintf("k%d", i), CreateKeyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
