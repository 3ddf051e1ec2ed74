package server_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// BenchmarkGenerateDataKey measures GenerateDataKey through the whole
// server (SigV4 verification, policy decision, batched audit record, AES-GCM)
// with unmodified aws-sdk-go-v2 clients over loopback HTTP, client and
// server on the same machine; -cpu sets the client concurrency.
func BenchmarkGenerateDataKey(b *testing.B) {
	f := newFixture(b)
	c := f.client(owner)
	ctx := context.Background()
	k := must(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k, KeySpec: types.DataKeySpecAes256,
				EncryptionContext: map[string]string{"tenant": "acme"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
