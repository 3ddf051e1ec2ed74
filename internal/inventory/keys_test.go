package inventory

import (
	"testing"

	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// TestKeysPKCS11: versions of a PKCS#11 key are counted under
// their object label's key, as an Inventory reports them.
func TestKeysPKCS11(t *testing.T) {
	k := keystore.KeyInfo{Name: "hsmpay", Backend: keystore.BackendPKCS11, Primary: 2, Versions: []keystore.VersionInfo{
		{Version: 1, Ref: "pkcs11:token=T;object=pay"}, {Version: 2, Ref: "pkcs11:token=T;object=pay%2Fv2"},
	}}
	got := Keys(&k)
	if len(got) != 2 || got[0] != [2]string{keyring.ProviderPKCS11, "pay"} || got[1] != got[0] {
		t.Fatalf("%v", got)
	}
}

func TestUsesOfExternalVersions(t *testing.T) {
	inv := &Inventory{Keys: []KeyUsage{
		{Key: "arn:aws:kms:us-east-1:111122223333:key/a", Provider: "aws-kms", Messages: 3},
		{Key: "pay", Provider: "keystack-pkcs11", Version: 1, Messages: 4},
	}}
	arn := "arn:aws:kms:us-east-1:111122223333:key/a"
	kms := &keystore.KeyInfo{Name: "k", Backend: keystore.BackendAWSKMS, Versions: []keystore.VersionInfo{
		{Version: 1, State: keystore.StateDecryptOnly, Ref: arn}, {Version: 2, State: keystore.StateEnabled, Ref: "arn:aws:kms:us-east-1:111122223333:key/b"}}}
	if n := usesOf(inv, kms, kms.Versions[0]); n != 3 {
		t.Fatalf("KMS version with its own ARN: %d uses", n)
	}
	kms.Versions[1].Ref = arn // on-demand rotation: both versions share the ARN
	if n := usesOf(inv, kms, kms.Versions[0]); n != 0 {
		t.Fatalf("KMS version sharing its ARN with the primary: %d uses", n)
	}
	hsm := &keystore.KeyInfo{Name: "pay", Backend: keystore.BackendPKCS11, Versions: []keystore.VersionInfo{
		{Version: 1, State: keystore.StateDecryptOnly, Ref: "pkcs11:token=T;object=pay%2Fv1;type=secret-key?module-path=/x.so"},
		{Version: 2, State: keystore.StateEnabled, Ref: "pkcs11:token=T;object=pay%2Fv2;type=secret-key?module-path=/x.so"}}}
	if n := usesOf(inv, hsm, hsm.Versions[0]); n != 4 {
		t.Fatalf("PKCS#11 version: %d uses", n)
	}
	if n := usesOf(inv, hsm, hsm.Versions[1]); n != 0 {
		t.Fatalf("PKCS#11 version 2: %d uses", n)
	}
}
