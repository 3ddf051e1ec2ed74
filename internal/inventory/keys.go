package inventory

import (
	"net/url"
	"strings"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// Keys lists the (provider, key) pairs under which an Inventory counts the
// messages of k's versions (KeyUsage.Provider and Key), so that a
// message's EDKs can be traced back to the store key that made them.
func Keys(k *keystore.KeyInfo) [][2]string {
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
			d := keyring.DescribeEDK(envelope.EncryptedDataKey{ProviderID: keyring.ProviderPKCS11, ProviderInfo: []byte(PKCS11Object(v.Ref))})
			out = append(out, [2]string{keyring.ProviderPKCS11, d.Key})
		}
	}
	return out
}

// PKCS11Object returns the object= label of an RFC 7512 URI, or "".
func PKCS11Object(ref string) string {
	path, _, _ := strings.Cut(strings.TrimPrefix(ref, "pkcs11:"), "?")
	for _, attr := range strings.Split(path, ";") {
		if v, ok := strings.CutPrefix(attr, "object="); ok {
			if label, err := url.PathUnescape(v); err == nil {
				return label
			}
		}
	}
	return ""
}
