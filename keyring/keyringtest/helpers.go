package keyringtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// encrypt runs OnEncrypt on fresh materials; dk is the caller's data key or nil.
func encrypt(t *testing.T, kr envelope.Keyring, s envelope.Suite, ec map[string]string, dk []byte) *envelope.EncryptionMaterials {
	t.Helper()
	m := &envelope.EncryptionMaterials{Suite: s, EncryptionContext: ec, DataKey: bytes.Clone(dk), PlaintextLength: -1}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt(%v): %v", s, err)
	}
	if len(m.DataKey) != s.DataKeyLen() {
		t.Fatalf("OnEncrypt(%v): data key of %d bytes, want %d", s, len(m.DataKey), s.DataKeyLen())
	}
	if len(m.EncryptedDataKeys) == 0 {
		t.Fatalf("OnEncrypt(%v) appended no encrypted data key", s)
	}
	for i, edk := range m.EncryptedDataKeys {
		if edk.ProviderID == "" || len(edk.Ciphertext) == 0 {
			t.Fatalf("OnEncrypt(%v): EDK %d has empty provider ID or ciphertext", s, i)
		}
	}
	return m
}

// decrypt runs OnDecrypt on fresh materials and returns the data key it set.
func decrypt(ctx context.Context, kr envelope.Keyring, s envelope.Suite, ec map[string]string, edks []envelope.EncryptedDataKey) ([]byte, error) {
	m := &envelope.DecryptionMaterials{Suite: s, EncryptionContext: ec}
	err := kr.OnDecrypt(ctx, m, edks)
	if err != nil && m.DataKey != nil {
		return m.DataKey, errors.New("keyringtest: OnDecrypt set a data key and also failed")
	}
	if err == nil && m.DataKey == nil {
		return nil, errors.New("keyringtest: OnDecrypt returned nil but set no data key")
	}
	return m.DataKey, err
}

// mustDecrypt asserts that kr unwraps edks to want.
func mustDecrypt(t *testing.T, kr envelope.Keyring, s envelope.Suite, ec map[string]string, edks []envelope.EncryptedDataKey, want []byte) {
	t.Helper()
	got, err := decrypt(context.Background(), kr, s, ec, edks)
	if err != nil {
		t.Fatalf("OnDecrypt(%v): %v", s, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("OnDecrypt(%v) unwrapped a different data key", s)
	}
}

// expectRefused asserts that kr refuses edks: an error wrapping
// envelope.ErrNoDecryptKey, no data key, and no trace of secret in the text.
// With attempts set it also requires a *envelope.NoDecryptKeyError listing
// at least one attempt.
func expectRefused(t *testing.T, what string, kr envelope.Keyring, s envelope.Suite, ec map[string]string, edks []envelope.EncryptedDataKey, secret []byte, attempts bool) *envelope.NoDecryptKeyError {
	t.Helper()
	got, err := decrypt(context.Background(), kr, s, ec, edks)
	if err == nil {
		t.Fatalf("%s: OnDecrypt succeeded, want an error", what)
	}
	if got != nil {
		t.Fatalf("%s: OnDecrypt set a data key although it failed", what)
	}
	if !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("%s: error %q does not wrap envelope.ErrNoDecryptKey", what, err)
	}
	checkNoSecret(t, what, err, secret)
	var nerr *envelope.NoDecryptKeyError
	if attempts && (!errors.As(err, &nerr) || len(nerr.Attempts) == 0) {
		t.Fatalf("%s: error %q is not a *envelope.NoDecryptKeyError listing the keys tried", what, err)
	}
	return nerr
}

// checkNoSecret fails when err's text holds secret raw, in hex or in base64.
func checkNoSecret(t *testing.T, what string, err error, secret []byte) {
	t.Helper()
	if len(secret) == 0 || err == nil {
		return
	}
	msg := err.Error()
	for _, enc := range []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
		base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret)} {
		if strings.Contains(msg, enc) {
			t.Fatalf("%s: error text contains the data key", what)
		}
	}
}

// cloneEDKs deep-copies edks so that a test can corrupt them.
func cloneEDKs(edks []envelope.EncryptedDataKey) []envelope.EncryptedDataKey {
	out := make([]envelope.EncryptedDataKey, len(edks))
	for i, e := range edks {
		out[i] = envelope.EncryptedDataKey{ProviderID: e.ProviderID, ProviderInfo: bytes.Clone(e.ProviderInfo), Ciphertext: bytes.Clone(e.Ciphertext)}
	}
	return out
}

// flipAt returns a copy of edks where, in every EDK, the byte of the chosen
// field at relative position i/n of its length is inverted.
func flipAt(edks []envelope.EncryptedDataKey, info bool, i, n int) []envelope.EncryptedDataKey {
	out := cloneEDKs(edks)
	for k := range out {
		b := out[k].Ciphertext
		if info {
			b = out[k].ProviderInfo
		}
		if len(b) > 0 {
			b[i*len(b)/n] ^= 0xFF
		}
	}
	return out
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
