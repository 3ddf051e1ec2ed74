package rewrap

import (
	"strings"

	"github.com/keystack/keystack/internal/inventory"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// primaryEDK describes the EDK that k's primary version writes, so that a
// rewrap can recognise messages already on it without any key operation
// (RewrapOptions.Targets): a local key's versioned name, an AWS KMS key's
// key ARN (which KMS names in its EDKs), a PKCS#11 key's object label. ok
// is false when the store alone cannot tell (an AWS KMS alias).
func primaryEDK(k *keystore.KeyInfo) (edk keyring.EDKInfo, ok bool) {
	var ref string
	for _, v := range k.Versions {
		if v.Version == k.Primary {
			ref = v.Ref
		}
	}
	switch k.Backend {
	case keystore.BackendLocal:
		if k.Namespace != "" {
			return keyring.EDKInfo{ProviderID: k.Namespace, KeyName: k.KeyName}, true
		}
		return keyring.EDKInfo{ProviderID: keyring.ProviderLocal, KeyName: keyring.VersionedKeyName(k.Name, k.Primary)}, true
	case keystore.BackendAWSKMS:
		if strings.HasPrefix(ref, "arn:") && strings.Contains(ref, ":key/") {
			return keyring.EDKInfo{ProviderID: keyring.ProviderAWSKMS, KeyName: ref}, true
		}
	case keystore.BackendPKCS11:
		if label := inventory.PKCS11Object(ref); label != "" {
			return keyring.EDKInfo{ProviderID: keyring.ProviderPKCS11, KeyName: label}, true
		}
	}
	return keyring.EDKInfo{}, false
}
