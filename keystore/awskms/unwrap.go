package awskms

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// OnDecrypt implements envelope.Keyring. It tries, in order, each aws-kms
// EDK whose key this keyring may use (a listed key or its multi-Region
// replica; in discovery mode any key the filter admits) and stops at the
// first that KMS decrypts. EDKs of other keys are never sent to KMS. On
// failure the *envelope.NoDecryptKeyError names every key tried and why.
func (k *Keyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	nerr := &envelope.NoDecryptKeyError{}
	for _, edk := range edks {
		if edk.ProviderID != keyring.ProviderAWSKMS {
			continue
		}
		edkARN, err := parseARN(string(edk.ProviderInfo))
		if err != nil || !edkARN.isKey() {
			nerr.Attempts = append(nerr.Attempts, attempt(truncate(edk.ProviderInfo), ErrInvalidKeyID))
			continue
		}
		target, ok := k.decryptTarget(edkARN)
		if !ok {
			continue
		}
		dk, err := k.decrypt(ctx, target, edk.Ciphertext, m.EncryptionContext, m.Suite.DataKeyLen())
		if err == nil {
			m.DataKey = dk
			return nil
		}
		nerr.Attempts = append(nerr.Attempts, attempt(target.raw, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(nerr.Attempts) == 0 {
		nerr.Attempts = append(nerr.Attempts, attempt("", ErrNoMatchingKey))
	}
	return nerr
}

func attempt(name string, err error) envelope.KeyAttempt {
	return envelope.KeyAttempt{ProviderID: keyring.ProviderAWSKMS, KeyName: name, Err: err}
}

// truncate shortens untrusted provider info for an error message.
func truncate(b []byte) string {
	const max = 128
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

// decryptTarget returns the key ARN to ask KMS to decrypt an EDK of edkARN
// with, or false when this keyring may not use that key. For a multi-Region
// key it is the configured replica, so the call goes to the configured Region.
func (k *Keyring) decryptTarget(edkARN keyARN) (keyARN, bool) {
	for _, key := range k.keys {
		if key.isKey() && mrkMatch(key, edkARN) {
			return key, true
		}
	}
	if k.discovery && k.filter.allows(edkARN) {
		return edkARN, true
	}
	return keyARN{}, false
}

func (k *Keyring) decrypt(ctx context.Context, key keyARN, blob []byte, ec map[string]string, n int) ([]byte, error) {
	if len(blob) == 0 || len(blob) > maxBlobLen {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes, KMS accepts 1 to %d", envelope.ErrMalformed, len(blob), maxBlobLen)
	}
	out, err := k.clients.get(key.region).Decrypt(ctx, &kms.DecryptInput{
		KeyId: aws.String(key.raw), CiphertextBlob: blob, EncryptionContext: ec, GrantTokens: k.grantTokens,
	})
	if err != nil {
		return nil, kmsError("Decrypt", key.raw, err)
	}
	if aws.ToString(out.KeyId) != key.raw {
		clear(out.Plaintext)
		return nil, fmt.Errorf("%w: Decrypt with %s answered for key %q", ErrBadResponse, key.raw, aws.ToString(out.KeyId))
	}
	if len(out.Plaintext) != n {
		clear(out.Plaintext)
		return nil, fmt.Errorf("%w: Decrypt with %s returned %d bytes, want %d", ErrBadResponse, key.raw, len(out.Plaintext), n)
	}
	return out.Plaintext, nil
}

// ReEncryptEDK rewraps a KMS data key under destKeyID (a key or alias ARN)
// with KMS ReEncrypt, so the plaintext data key never leaves KMS. ec must be
// the message's encryption context; it is kept. The source EDK must name a
// key this keyring may decrypt with. The call goes to the destination
// key's Region.
func (k *Keyring) ReEncryptEDK(ctx context.Context, edk envelope.EncryptedDataKey, ec map[string]string, destKeyID string) (envelope.EncryptedDataKey, error) {
	var none envelope.EncryptedDataKey
	dest, err := parseARN(destKeyID)
	if err != nil {
		return none, err
	}
	if edk.ProviderID != keyring.ProviderAWSKMS {
		return none, fmt.Errorf("%w: EDK provider %q is not %s", ErrNoMatchingKey, edk.ProviderID, keyring.ProviderAWSKMS)
	}
	src, err := parseARN(string(edk.ProviderInfo))
	if err != nil || !src.isKey() {
		return none, fmt.Errorf("%w: EDK provider info %s", ErrInvalidKeyID, truncate(edk.ProviderInfo))
	}
	target, ok := k.decryptTarget(src)
	if !ok {
		return none, fmt.Errorf("%w: %s", ErrNoMatchingKey, src.raw)
	}
	if len(edk.Ciphertext) == 0 || len(edk.Ciphertext) > maxBlobLen {
		return none, fmt.Errorf("%w: ciphertext of %d bytes", envelope.ErrMalformed, len(edk.Ciphertext))
	}
	out, err := k.clients.get(dest.region).ReEncrypt(ctx, &kms.ReEncryptInput{
		CiphertextBlob: edk.Ciphertext, SourceKeyId: aws.String(target.raw), SourceEncryptionContext: ec,
		DestinationKeyId: aws.String(dest.raw), DestinationEncryptionContext: ec, GrantTokens: k.grantTokens,
	})
	if err != nil {
		return none, kmsError("ReEncrypt", dest.raw, err)
	}
	if aws.ToString(out.SourceKeyId) != target.raw {
		return none, fmt.Errorf("%w: ReEncrypt from %s answered for source %q", ErrBadResponse, target.raw, aws.ToString(out.SourceKeyId))
	}
	return resultEDK("ReEncrypt", dest, out.KeyId, out.CiphertextBlob)
}
