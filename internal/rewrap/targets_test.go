package rewrap

import (
	"testing"

	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// TestPrimaryEDK: the predicted EDK of each backend's primary version, and
// no prediction where the store cannot know what KMS will name.
func TestPrimaryEDK(t *testing.T) {
	const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	versions := func(refs ...string) []keystore.VersionInfo {
		var vs []keystore.VersionInfo
		for i, r := range refs {
			vs = append(vs, keystore.VersionInfo{Version: i + 1, Ref: r})
		}
		return vs
	}
	cases := []struct {
		name string
		key  keystore.KeyInfo
		want keyring.EDKInfo
		ok   bool
	}{
		{"local", keystore.KeyInfo{Name: "pay", Backend: keystore.BackendLocal, Primary: 3}, keyring.EDKInfo{ProviderID: keyring.ProviderLocal, KeyName: "pay/v3"}, true},
		{"imported", keystore.KeyInfo{Name: "x", Backend: keystore.BackendLocal, Primary: 1, Namespace: "ns", KeyName: "kn"}, keyring.EDKInfo{ProviderID: "ns", KeyName: "kn"}, true},
		{"kms", keystore.KeyInfo{Backend: keystore.BackendAWSKMS, Primary: 2, Versions: versions("arn:old", arn)}, keyring.EDKInfo{ProviderID: keyring.ProviderAWSKMS, KeyName: arn}, true},
		{"kms-alias", keystore.KeyInfo{Backend: keystore.BackendAWSKMS, Primary: 1, Versions: versions("arn:aws:kms:us-east-1:111122223333:alias/a")}, keyring.EDKInfo{}, false},
		{"pkcs11", keystore.KeyInfo{Backend: keystore.BackendPKCS11, Primary: 2, Versions: versions("pkcs11:token=T;object=pay", "pkcs11:token=T;object=pay%2Fv2?pin-source=file:/p")}, keyring.EDKInfo{ProviderID: keyring.ProviderPKCS11, KeyName: "pay/v2"}, true},
		{"pkcs11-no-label", keystore.KeyInfo{Backend: keystore.BackendPKCS11, Primary: 1, Versions: versions("pkcs11:token=T")}, keyring.EDKInfo{}, false},
	}
	for _, c := range cases {
		got, ok := primaryEDK(&c.key)
		if ok != c.ok || got.ProviderID != c.want.ProviderID || got.KeyName != c.want.KeyName {
			t.Errorf("%s: %+v %v, want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
