package awskms

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// OnEncrypt implements envelope.Keyring: with no data key yet, the first
// key generates one with GenerateDataKey; every further key wraps it with
// Encrypt. EDKs are added only when every KMS call succeeded.
func (k *Keyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	if len(k.keys) == 0 {
		return ErrNoEncryptKey
	}
	n := m.Suite.DataKeyLen()
	if n == 0 {
		return fmt.Errorf("%w: %v", envelope.ErrUnsupportedSuite, m.Suite)
	}
	if m.DataKey != nil && len(m.DataKey) != n {
		return fmt.Errorf("%w: data key is %d bytes, suite %v needs %d", ErrInvalidOptions, len(m.DataKey), m.Suite, n)
	}
	dk, keys := m.DataKey, k.keys
	var edks []envelope.EncryptedDataKey
	if dk == nil {
		edk, gen, err := k.generate(ctx, keys[0], n, m.EncryptionContext)
		if err != nil {
			return err
		}
		dk, keys, edks = gen, keys[1:], append(edks, edk)
	}
	for _, key := range keys {
		edk, err := k.encrypt(ctx, key, dk, m.EncryptionContext)
		if err != nil {
			return err
		}
		edks = append(edks, edk)
	}
	m.DataKey = dk
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, edks...)
	return nil
}

func (k *Keyring) generate(ctx context.Context, key keyARN, n int, ec map[string]string) (envelope.EncryptedDataKey, []byte, error) {
	out, err := k.clients.get(key.region).GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(key.raw), NumberOfBytes: aws.Int32(int32(n)),
		EncryptionContext: ec, GrantTokens: k.grantTokens,
	})
	if err != nil {
		return envelope.EncryptedDataKey{}, nil, kmsError("GenerateDataKey", key.raw, err)
	}
	if len(out.Plaintext) != n {
		return envelope.EncryptedDataKey{}, nil, fmt.Errorf("%w: GenerateDataKey with %s returned %d bytes, want %d",
			ErrBadResponse, key.raw, len(out.Plaintext), n)
	}
	edk, err := resultEDK("GenerateDataKey", key, out.KeyId, out.CiphertextBlob)
	if err != nil {
		clear(out.Plaintext)
		return envelope.EncryptedDataKey{}, nil, err
	}
	return edk, out.Plaintext, nil
}

func (k *Keyring) encrypt(ctx context.Context, key keyARN, dk []byte, ec map[string]string) (envelope.EncryptedDataKey, error) {
	out, err := k.clients.get(key.region).Encrypt(ctx, &kms.EncryptInput{
		KeyId: aws.String(key.raw), Plaintext: dk, EncryptionContext: ec, GrantTokens: k.grantTokens,
	})
	if err != nil {
		return envelope.EncryptedDataKey{}, kmsError("Encrypt", key.raw, err)
	}
	return resultEDK("Encrypt", key, out.KeyId, out.CiphertextBlob)
}

// resultEDK builds the EDK for a KMS answer to a request naming key. The
// provider info is the key ARN KMS returned, which must be a key ARN of the
// same partition, Region and account, and equal to key when key is one.
func resultEDK(op string, key keyARN, keyID *string, blob []byte) (envelope.EncryptedDataKey, error) {
	got, err := parseARN(aws.ToString(keyID))
	if err != nil || !got.isKey() || got.partition != key.partition || got.region != key.region ||
		got.account != key.account || (key.isKey() && got.raw != key.raw) {
		return envelope.EncryptedDataKey{}, fmt.Errorf("%w: %s with %s answered for key %q",
			ErrBadResponse, op, key.raw, aws.ToString(keyID))
	}
	if len(blob) == 0 || len(blob) > maxBlobLen {
		return envelope.EncryptedDataKey{}, fmt.Errorf("%w: %s with %s returned a %d-byte ciphertext",
			ErrBadResponse, op, key.raw, len(blob))
	}
	return envelope.EncryptedDataKey{ProviderID: keyring.ProviderAWSKMS, ProviderInfo: []byte(got.raw), Ciphertext: blob}, nil
}
