package keyring

import (
	"context"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/keyname"
)

func TestDescribeEDK(t *testing.T) {
	ctx := context.Background()
	wrap := func(kr envelope.Keyring) envelope.EncryptedDataKey {
		t.Helper()
		m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted}
		if err := kr.OnEncrypt(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m.EncryptedDataKeys[0]
	}
	aes, err := NewRawAES(ProviderLocal, VersionedKeyName("payments", 12), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	got := DescribeEDK(wrap(aes))
	if got.Key != "payments" || got.Version != 12 || got.KeyName != "payments/v12" || len(got.IV) != 12 {
		t.Fatalf("local AES EDK described as %+v", got)
	}
	foreign, err := NewRawAES("aws-raw-vectors-persistant", "aes-256", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if got := DescribeEDK(wrap(foreign)); got.Key != "aes-256" || got.Version != 0 || got.ProviderID != "aws-raw-vectors-persistant" {
		t.Fatalf("foreign AES EDK described as %+v", got)
	}
	arn := "arn:aws:kms:us-west-2:658956600833:key/b3537ef1-d8dc-4780-9f5a-55776cbb2f7f"
	if got := DescribeEDK(envelope.EncryptedDataKey{ProviderID: "aws-kms", ProviderInfo: []byte(arn)}); got.Key != arn || got.Version != 0 {
		t.Fatalf("KMS EDK described as %+v", got)
	}
	for in, want := range map[string]int{"k/v0": 0, "k/v01": 0, "k/vx": 0, "/v3": 0, "a/b/v7": 7} {
		if _, v := keyname.Split(in); v != want {
			t.Errorf("keyname.Split(%q) version = %d, want %d", in, v, want)
		}
	}
}
