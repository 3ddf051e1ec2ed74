package rotation

import (
	"strings"

	"github.com/keystack/keystack/envelope"
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
		if label := pkcs11Object(ref); label != "" {
			return keyring.EDKInfo{ProviderID: keyring.ProviderPKCS11, KeyName: label}, true
		}
	}
	return keyring.EDKInfo{}, false
}

// inventoryKeys lists the (provider, key) pairs under which an Inventory
// counts the messages of k's versions (KeyUsage.Provider and Key), so that
// a message's EDKs can be traced back to the store key that made them.
func inventoryKeys(k *keystore.KeyInfo) [][2]string {
	switch {
	case k.Namespace != "":
		return [][2]string{{k.Namespace, k.KeyName}}
	case k.Backend == keystore.BackendLocal:
		return [][2]string{{keyring.ProviderLocal, k.Name}}
	}
	var out [][2]string
	for _, v := range k.Versions {
		switch k.Backend {
		case keystore.BackendAWSKMS:
			out = append(out, [2]string{keyring.ProviderAWSKMS, v.Ref})
		case keystore.BackendPKCS11:
			d := keyring.DescribeEDK(envelope.EncryptedDataKey{ProviderID: keyring.ProviderPKCS11, ProviderInfo: []byte(pkcs11Object(v.Ref))})
			out = append(out, [2]string{keyring.ProviderPKCS11, d.Key})
		}
	}
	return out
}
