package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/rawaes"
)

// rawAES is the keyring NewRawAES returns.
type rawAES struct {
	namespace, name string
	aead            cipher.AEAD
}

var _ envelope.Keyring = (*rawAES)(nil)

// NewRawAES returns a keyring that wraps data keys with AES-GCM under key,
// a 16, 24 or 32 byte wrapping key held in memory (copied), producing
// exactly the ESDK raw AES keyring's encrypted data keys
// (framework/raw-aes-keyring.md): provider ID = namespace, provider info =
// key name ‖ tag bits ‖ IV length ‖ IV, ciphertext = wrapped key ‖ tag,
// with the serialized encryption context as AAD. On decrypt it tries only
// EDKs whose provider ID and key name are this key's.
func NewRawAES(namespace, keyName string, key []byte) (envelope.Keyring, error) {
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
	return &rawAES{namespace: namespace, name: keyName, aead: aead}, nil
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
func (k *rawAES) OnEncrypt(_ context.Context, m *envelope.EncryptionMaterials) error {
	if err := EnsureDataKey(m); err != nil {
		return err
	}
	aad, err := envelope.SerializeContext(m.EncryptionContext)
	if err != nil {
		return err
	}
	iv := make([]byte, rawaes.IVLen)
	if _, err := rand.Read(iv); err != nil {
		return err
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, envelope.EncryptedDataKey{
		ProviderID:   k.namespace,
		ProviderInfo: rawaes.ProviderInfo(k.name, iv),
		Ciphertext:   k.aead.Seal(nil, iv, m.DataKey, aad),
	})
	return nil
}

// OnDecrypt implements envelope.Keyring. It tries only EDKs whose provider ID
// and key name are this key's.
func (k *rawAES) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	aad, err := envelope.SerializeContext(m.EncryptionContext)
	if err != nil {
		return err
	}
	return DecryptFirst(ctx, m, edks, k.attempt, func(edk envelope.EncryptedDataKey) ([]byte, bool, error) {
		iv, ok := rawaes.Match(edk, k.namespace, k.name)
		if !ok {
			return nil, false, nil
		}
		if len(edk.Ciphertext) != m.Suite.DataKeyLen()+rawaes.TagLen {
			return nil, true, ErrInvalidEDK
		}
		dk, err := k.aead.Open(nil, iv, edk.Ciphertext, aad)
		if err != nil {
			return nil, true, ErrUnwrapFailed
		}
		return dk, true, nil
	})
}

func (k *rawAES) attempt(err error) envelope.KeyAttempt {
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
