package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/keystack/keystack/envelope"
)

const (
	gcmTagBits = 128
	gcmIVLen   = 12
	gcmTagLen  = 16
	// rawAESInfoSuffix is tag bits u32 ‖ IV length u32 ‖ IV.
	rawAESInfoSuffix = 4 + 4 + gcmIVLen
)

// RawAES wraps data keys with AES-GCM under a wrapping key held in
// memory, producing exactly the ESDK raw AES keyring's encrypted data keys
// (framework/raw-aes-keyring.md): provider ID = namespace, provider info =
// key name ‖ tag bits ‖ IV length ‖ IV, ciphertext = wrapped key ‖ tag, with
// the serialized encryption context as AAD.
type RawAES struct {
	namespace, name string
	aead            cipher.AEAD
}

var _ envelope.Keyring = (*RawAES)(nil)

// NewRawAES returns a keyring for a 16, 24 or 32 byte wrapping key.
// The key is copied.
func NewRawAES(namespace, keyName string, key []byte) (*RawAES, error) {
	if err := CheckRawNames(namespace, keyName); err != nil {
		return nil, err
	}
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("%w: AES wrapping key must be 16, 24 or 32 bytes, got %d", ErrInvalidKey, len(key))
	}
	block, err := aes.NewCipher(bytes.Clone(key))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &RawAES{namespace: namespace, name: keyName, aead: aead}, nil
}

// CheckRawNames checks the namespace (provider ID) and key name of a raw
// keyring: both non-empty, and the namespace not AWS KMS's reserved one.
func CheckRawNames(namespace, keyName string) error {
	if namespace == "" || keyName == "" {
		return fmt.Errorf("%w: namespace and key name must not be empty", ErrInvalidKey)
	}
	if namespace == "aws-kms" {
		return fmt.Errorf("%w: namespace %q is reserved for AWS KMS", ErrInvalidKey, namespace)
	}
	return nil
}

// OnEncrypt implements envelope.Keyring.
func (k *RawAES) OnEncrypt(_ context.Context, m *envelope.EncryptionMaterials) error {
	if err := EnsureDataKey(m); err != nil {
		return err
	}
	aad, err := envelope.SerializeContext(m.EncryptionContext)
	if err != nil {
		return err
	}
	iv := make([]byte, gcmIVLen)
	if _, err := rand.Read(iv); err != nil {
		return err
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, envelope.EncryptedDataKey{
		ProviderID:   k.namespace,
		ProviderInfo: RawAESProviderInfo(k.name, iv),
		Ciphertext:   k.aead.Seal(nil, iv, m.DataKey, aad),
	})
	return nil
}

// OnDecrypt implements envelope.Keyring. It tries only EDKs whose provider ID
// and key name are this key's.
func (k *RawAES) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	aad, err := envelope.SerializeContext(m.EncryptionContext)
	if err != nil {
		return err
	}
	return DecryptFirst(ctx, m, edks, k.attempt, func(edk envelope.EncryptedDataKey) ([]byte, bool, error) {
		iv, ok := MatchRawAESEDK(edk, k.namespace, k.name)
		if !ok {
			return nil, false, nil
		}
		if len(edk.Ciphertext) != m.Suite.DataKeyLen()+gcmTagLen {
			return nil, true, ErrInvalidEDK
		}
		dk, err := k.aead.Open(nil, iv, edk.Ciphertext, aad)
		if err != nil {
			return nil, true, ErrUnwrapFailed
		}
		return dk, true, nil
	})
}

// RawAESProviderInfo returns the ESDK raw AES keyring's provider info
// (framework/raw-aes-keyring.md): keyName ‖ tag bits u32 (128) ‖ IV length
// u32 (12) ‖ IV. Keyrings that wrap with AES-GCM elsewhere (an HSM) use it
// to write the same EDKs.
func RawAESProviderInfo(keyName string, iv []byte) []byte {
	info := make([]byte, 0, len(keyName)+rawAESInfoSuffix)
	info = append(info, keyName...)
	info = binary.BigEndian.AppendUint32(info, gcmTagBits)
	info = binary.BigEndian.AppendUint32(info, gcmIVLen)
	return append(info, iv...)
}

// MatchRawAESEDK reports whether edk is a raw AES EDK of the key keyName
// in namespace, with a 128-bit tag and a 12-byte IV, and returns its IV.
func MatchRawAESEDK(edk envelope.EncryptedDataKey, namespace, keyName string) ([]byte, bool) {
	if edk.ProviderID != namespace {
		return nil, false
	}
	name, iv, ok := splitRawAESInfo(edk.ProviderInfo)
	if !ok || name != keyName {
		return nil, false
	}
	return iv, true
}

func (k *RawAES) attempt(err error) envelope.KeyAttempt {
	return envelope.KeyAttempt{ProviderID: k.namespace, KeyName: k.name, Err: err}
}

// EnsureDataKey generates m's data key (of the suite's length, from
// crypto/rand) when no keyring has yet, and checks the length of one that
// is set. Keyrings call it first in OnEncrypt.
func EnsureDataKey(m *envelope.EncryptionMaterials) error {
	n := m.Suite.DataKeyLen()
	if n == 0 {
		return fmt.Errorf("%w: %v", envelope.ErrUnsupportedSuite, m.Suite)
	}
	if m.DataKey != nil {
		if len(m.DataKey) != n {
			return fmt.Errorf("%w: data key is %d bytes, suite needs %d", ErrInvalidKey, len(m.DataKey), n)
		}
		return nil
	}
	m.DataKey = make([]byte, n)
	_, err := rand.Read(m.DataKey)
	return err
}
