package server_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keystack/keystack/internal/kmstest"
)

// BenchmarkServerLoadExternal is BenchmarkServerLoad's paced row against
// a server in another process (make bench pins each to its own core), so
// that the tail is the server's and not the scheduler's of one process
// running both: GenerateDataKey at BENCH_PACED_RATE (default 5000/s) over
// 64 connections, latency from each request's scheduled time, b.N
// requests. The server is KEYSTACK_LOAD_URL, signed for with
// KEYSTACK_LOAD_AKID and KEYSTACK_LOAD_SECRET in KEYSTACK_LOAD_REGION
// (default us-east-1), key KEYSTACK_LOAD_KEY (empty: one made with
// CreateKey). cpu-us/op is the generator's CPU only. Skipped without
// KEYSTACK_LOAD_URL.
func BenchmarkServerLoadExternal(b *testing.B) {
	url := os.Getenv("KEYSTACK_LOAD_URL")
	if url == "" {
		b.Skip("KEYSTACK_LOAD_URL not set: no external server to load (make bench sets it)")
	}
	current = b
	t := &loadTarget{url: url, akid: os.Getenv("KEYSTACK_LOAD_AKID"), secret: os.Getenv("KEYSTACK_LOAD_SECRET"),
		region: os.Getenv("KEYSTACK_LOAD_REGION"), keyID: os.Getenv("KEYSTACK_LOAD_KEY")}
	if t.region == "" {
		t.region = "us-east-1"
	}
	if t.keyID == "" {
		c := clientFor(t.url, t.akid, t.secret)
		c = kms.New(c.Options(), func(o *kms.Options) { o.Region = t.region })
		t.keyID = aws.ToString(must(c.CreateKey(context.Background(), &kms.CreateKeyInput{})).KeyMetadata.KeyId)
	}
	runLoad(b, t.gen("GenerateDataKey"), 64, pacedRate())
}

// BenchmarkServeKMSTest serves the KMS test server (the no-policy,
// no-audit baseline) in this process until SIGTERM or SIGINT, for
// BenchmarkServerLoadExternal in another: it writes the URL to the file
// KEYSTACK_KMSTEST_URL_FILE once listening. Skipped without that variable.
func BenchmarkServeKMSTest(b *testing.B) {
	file := os.Getenv("KEYSTACK_KMSTEST_URL_FILE")
	if file == "" {
		b.Skip("KEYSTACK_KMSTEST_URL_FILE not set: make bench sets it")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ks := kmstest.NewServer()
	defer ks.Close()
	if err := os.WriteFile(file+".tmp", []byte(ks.URL()), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		b.Fatal(err)
	}
	<-ctx.Done()
}
