package keyring

import (
	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/keyname"
	"github.com/keystack/keystack/internal/rawaes"
)

// Provider IDs keystack writes for its own backends. Imported keys keep the
// namespace their owner chose.
const (
	ProviderLocal  = "keystack"
	ProviderPKCS11 = "keystack-pkcs11"
	ProviderAWSKMS = "aws-kms"
)

// EDKInfo describes an encrypted data key from its header fields alone,
// without any key: what inventory, inspect and rewrap need.
type EDKInfo struct {
	ProviderID string `json:"provider"`
	// KeyName is the raw keyring key name (for keystack keys "NAME/vN"),
	// or the KMS key ARN.
	KeyName string `json:"key_name"`
	// Key is the master key: the keystack key NAME, the KMS ARN, or the raw
	// key name for keys of other ESDK users.
	Key string `json:"key"`
	// Version is the keystack key version, or 0 where the backend has none.
	Version int `json:"version"`
	// IV is the raw AES keyring's wrapping IV, when the provider info has one.
	IV []byte `json:"iv,omitempty"`
}

// DescribeEDK parses an EDK's provider info: a KMS ARN, a raw AES key name
// ‖ tag bits ‖ IV length ‖ IV (framework/raw-aes-keyring.md), or a raw RSA
// key name; keystack's "NAME/vN" key names yield the key and its version.
func DescribeEDK(edk envelope.EncryptedDataKey) EDKInfo {
	info := EDKInfo{ProviderID: edk.ProviderID, KeyName: string(edk.ProviderInfo)}
	if edk.ProviderID != ProviderAWSKMS {
		if name, iv, ok := rawaes.SplitInfo(edk.ProviderInfo); ok {
			info.KeyName, info.IV = name, iv
		}
	}
	info.Key = info.KeyName
	if edk.ProviderID == ProviderLocal || edk.ProviderID == ProviderPKCS11 {
		info.Key, info.Version = keyname.Split(info.KeyName)
	}
	return info
}

// VersionedKeyName is the raw keyring key name keystack gives version v of key name.
func VersionedKeyName(name string, v int) string { return keyname.Versioned(name, v) }
