package keystore

import (
	"context"
	"errors"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/policy"
)

// seenKeyring records the EDKs it is offered and unwraps those of key ok.
type seenKeyring struct {
	seen []string
	ok   string
}

func (k *seenKeyring) OnEncrypt(context.Context, *envelope.EncryptionMaterials) error { return nil }

func (k *seenKeyring) OnDecrypt(_ context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	for _, e := range edks {
		k.seen = append(k.seen, string(e.ProviderInfo))
		if string(e.ProviderInfo) == k.ok {
			m.DataKey = make([]byte, 32)
			return nil
		}
	}
	return &envelope.NoDecryptKeyError{}
}

// TestDiscoveryKeyringGated: the wrapped discovery keyring sees only EDKs
// the policy allows for the message's context, one at a time, and never
// an EDK of another provider.
func TestDiscoveryKeyringGated(t *testing.T) {
	ctx := context.Background()
	dir := newAuthzStore(t, `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"user:bob","Action":"keystack:Decrypt","Resource":"key/arn:*:good",
	  "Condition":{"StringEquals":{"keystack:EncryptionContext/tenant":"t1"}}}]}`)
	s := openAs(t, dir, "user:bob")
	inner := &seenKeyring{ok: "arn:x:good"}
	kr, err := s.DiscoveryKeyring(ctx, inner, "aws-kms")
	if err != nil {
		t.Fatal(err)
	}
	edks := []envelope.EncryptedDataKey{
		{ProviderID: "aws-kms", ProviderInfo: []byte("arn:x:bad")},
		{ProviderID: "other", ProviderInfo: []byte("arn:x:good")},
		{ProviderID: "aws-kms", ProviderInfo: []byte("bad name\n")},
		{ProviderID: "aws-kms", ProviderInfo: []byte("arn:x:good")},
	}
	m := &envelope.DecryptionMaterials{EncryptionContext: map[string]string{"tenant": "t1"}}
	if err := kr.OnDecrypt(ctx, m, edks); err != nil || m.DataKey == nil {
		t.Fatalf("allowed key: %v", err)
	}
	if len(inner.seen) != 1 || inner.seen[0] != "arn:x:good" {
		t.Fatalf("inner keyring saw %q, want only the allowed EDK", inner.seen)
	}
	inner.seen = nil
	m = &envelope.DecryptionMaterials{EncryptionContext: map[string]string{"tenant": "t2"}}
	err = kr.OnDecrypt(ctx, m, edks)
	var de *policy.DeniedError
	if !errors.As(err, &de) || m.DataKey != nil || len(inner.seen) != 0 {
		t.Fatalf("denied context: err %v, inner saw %q", err, inner.seen)
	}
	if err := kr.OnEncrypt(ctx, &envelope.EncryptionMaterials{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("discovery encrypt: %v", err)
	}
	_ = s.Close() // the log is closed: decisions fail closed
	if err := kr.OnDecrypt(ctx, &envelope.DecryptionMaterials{EncryptionContext: map[string]string{"tenant": "t1"}}, edks); !errors.Is(err, policy.ErrAuditFailed) {
		t.Fatalf("closed audit log: %v", err)
	}
}
