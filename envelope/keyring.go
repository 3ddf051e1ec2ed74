package envelope

import "context"

// EncryptedDataKey is one wrapped copy of a message's data key, as stored in
// the message header (ESDK framework/structures.md, "encrypted data key").
type EncryptedDataKey struct {
	// ProviderID names the kind of master key: a raw keyring's namespace,
	// "aws-kms", or keystack's own namespace.
	ProviderID string
	// ProviderInfo identifies the master key within the provider: a key name
	// (with version), a KMS key ARN, or raw-AES key name ‖ tag bits ‖ IV length ‖ IV.
	ProviderInfo []byte
	// Ciphertext is the wrapped data key.
	Ciphertext []byte
}

// EncryptionMaterials is what a Keyring receives on encrypt
// (ESDK framework/structures.md, "encryption materials").
type EncryptionMaterials struct {
	// Suite is the message's algorithm suite; DataKey must be Suite.DataKeyLen() bytes.
	Suite Suite
	// EncryptionContext is the full context, including required-context keys
	// and, for signed suites, "aws-crypto-public-key". Keyrings must not modify it.
	EncryptionContext map[string]string
	// DataKey is nil until a keyring generates it. A keyring that finds it
	// nil generates it; one that finds it set wraps it.
	DataKey []byte
	// EncryptedDataKeys collects the wrapped copies; keyrings append to it.
	EncryptedDataKeys []EncryptedDataKey
	// PlaintextLength is the message's plaintext length when known up front
	// (one-shot encryption), or -1 for a stream. Caching keyrings use it to
	// enforce byte limits.
	PlaintextLength int64
}

// DecryptionMaterials is what a Keyring receives on decrypt.
type DecryptionMaterials struct {
	Suite Suite
	// EncryptionContext is the full context: the header's and the pairs
	// the caller reproduced. Keyrings must not modify it.
	EncryptionContext map[string]string
	// DataKey is set by the first keyring that unwraps an encrypted data key.
	DataKey []byte
}

// Keyring wraps and unwraps data keys under master keys (ESDK framework/keyring-interface.md).
//
// OnEncrypt generates m.DataKey when it is nil, then appends at least one
// encrypted data key for it. OnDecrypt sets m.DataKey from one of edks; it
// must leave m unchanged when m.DataKey is already set, and otherwise return
// an error that wraps ErrNoDecryptKey (preferably a *NoDecryptKeyError naming
// every key it tried) when it cannot. Implementations are safe for
// concurrent use.
type Keyring interface {
	OnEncrypt(ctx context.Context, m *EncryptionMaterials) error
	OnDecrypt(ctx context.Context, m *DecryptionMaterials, edks []EncryptedDataKey) error
}
