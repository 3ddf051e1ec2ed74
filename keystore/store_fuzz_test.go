package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseStoreFile feeds keystore.json parsing arbitrary bytes: it must
// never panic, and must fail only with ErrCorruptStore.
func FuzzParseStoreFile(f *testing.F) {
	for _, insecure := range []bool{false, true} {
		dir := f.TempDir()
		opts := InitOptions{Insecure: insecure}
		if !insecure {
			opts.Passphrase = []byte(testPass)
		}
		s, err := Init(dir, opts)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := s.ImportKey(f.Context(), "k", ImportKeyOptions{AESKey: make([]byte, 16)}); err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, metaFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"format":1,"insecure":true,"keys":{"a":null}}`))
	f.Add([]byte(`{"format":1,"kdf":{"name":"scrypt","salt":"AAAAAAAAAAAAAAAAAAAAAA==","log_n":60,"r":1,"p":1},"verifier":"AA==","keys":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseStoreFile(data); err != nil && !errors.Is(err, ErrCorruptStore) {
			t.Fatalf("parse error %v is not ErrCorruptStore", err)
		}
	})
}
