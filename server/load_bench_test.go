package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keystack/keystack/internal/kmstest"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

// BenchmarkServerLoad is the key server's load benchmark (make bench):
// GenerateDataKey and Decrypt at 1, 8 and 64 concurrent connections over
// loopback HTTP, against keystack server with SigV4, the policy and the
// audit log batched ("batch") or fsynced per record through group commit
// ("sync"), and against the project's KMS test server (no policy, no
// audit: the baseline of the same run). The load generator signs each
// distinct body once a minute with the SDK's SigV4 signer and reuses the
// signature (the server accepts a signature for 5 minutes), so that the
// figures are the server's, not the signer's; "paced" runs send
// GenerateDataKey at a fixed rate (BENCH_PACED_RATE, default 5000/s) and
// measure latency from each request's scheduled time, so queueing counts.
// Metrics: req/s, p50-ms, p99-ms, and cpu-us/op (the process's CPU time,
// generator and server, per request: the figure least moved by other jobs
// on a shared machine). Every run is bounded by b.N.
func BenchmarkServerLoad(b *testing.B) {
	targets := map[string]*loadTarget{}
	for _, name := range []string{"kmstest", "batch", "sync"} {
		targets[name] = newLoadTarget(b, name)
	}
	for _, name := range []string{"kmstest", "batch", "sync"} {
		for _, op := range []string{"GenerateDataKey", "Decrypt"} {
			for _, conns := range []int{1, 8, 64} {
				b.Run(fmt.Sprintf("%s/%s/conns=%d", name, op, conns), func(b *testing.B) {
					runLoad(b, targets[name].gen(op), conns, 0)
				})
			}
		}
	}
	for _, name := range []string{"kmstest", "batch"} {
		b.Run(name+"/GenerateDataKey/paced", func(b *testing.B) {
			runLoad(b, targets[name].gen("GenerateDataKey"), 64, pacedRate())
		})
	}
}

func pacedRate() float64 {
	r, err := strconv.ParseFloat(os.Getenv("BENCH_PACED_RATE"), 64)
	if err != nil || r <= 0 {
		return 5000
	}
	return r
}

// loadTarget is a server under load with a key and a ciphertext of it.
type loadTarget struct {
	url, akid, secret, region, keyID string
	blob                             []byte
}

func newLoadTarget(b *testing.B, name string) *loadTarget {
	b.Helper()
	current = b
	t := &loadTarget{region: "eu-west-1"}
	if name == "kmstest" {
		ks := kmstest.NewServer()
		b.Cleanup(ks.Close)
		t.url, t.akid, t.secret, t.region = ks.URL(), kmstest.AccessKeyID, kmstest.SecretAccessKey, "us-east-1"
	} else {
		dir := filepath.Join(b.TempDir(), "ks")
		s, err := keystore.Init(dir, keystore.InitOptions{Passphrase: []byte("pw"), KDF: "scrypt", Owner: owner})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
		s = must(keystore.Open(dir, keystore.OpenOptions{Principal: owner, AuditSync: name == "sync",
			Passphrase: func() ([]byte, error) { return []byte("pw"), nil }}))
		c := must(s.CreateCredential(context.Background(), owner))
		t.akid, t.secret = c.AccessKeyID, c.Secret
		t.url = serve(b, s, server.ListenConfig{HTTPAddr: "127.0.0.1:0"})
	}
	c := clientFor(t.url, t.akid, t.secret)
	c = kms.New(c.Options(), func(o *kms.Options) { o.Region = t.region })
	ctx := context.Background()
	t.keyID = *must(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	dk := must(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(t.keyID), KeySpec: types.DataKeySpecAes256,
		EncryptionContext: map[string]string{"tenant": "acme"}}))
	t.blob = dk.CiphertextBlob
	return t
}

// gen returns a request generator for op.
func (t *loadTarget) gen(op string) *loadGen {
	body := map[string]any{"KeyId": t.keyID, "KeySpec": "AES_256", "EncryptionContext": map[string]string{"tenant": "acme"}}
	if op == "Decrypt" {
		body = map[string]any{"CiphertextBlob": base64.StdEncoding.EncodeToString(t.blob), "EncryptionContext": map[string]string{"tenant": "acme"}}
	}
	raw, _ := json.Marshal(body)
	return &loadGen{t: t, op: op, body: raw}
}

// loadGen sends one operation with one body, signed once a minute.
type loadGen struct {
	t    *loadTarget
	op   string
	body []byte
	mu   sync.Mutex
	hdr  http.Header
	at   time.Time
}

func (g *loadGen) headers() (http.Header, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hdr != nil && time.Since(g.at) < time.Minute {
		return g.hdr, nil
	}
	req, err := http.NewRequest(http.MethodPost, g.t.url+"/", bytes.NewReader(g.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService."+g.op)
	sum := sha256.Sum256(g.body)
	now := time.Now()
	creds := aws.Credentials{AccessKeyID: g.t.akid, SecretAccessKey: g.t.secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", g.t.region, now); err != nil {
		return nil, err
	}
	g.hdr, g.at = req.Header, now
	return g.hdr, nil
}

func (g *loadGen) do(hc *http.Client) error {
	h, err := g.headers()
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, g.t.url+"/", bytes.NewReader(g.body))
	if err != nil {
		return err
	}
	req.Header = h.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: HTTP %d: %s", g.op, resp.StatusCode, out)
	}
	return err
}

// runLoad sends b.N requests over conns connections, as fast as they go
// or, with rate > 0, each at its scheduled time; it reports throughput and
// the 50th and 99th latency percentiles.
func runLoad(b *testing.B, g *loadGen, conns int, rate float64) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if err := g.do(hc); err != nil { // warm: a connection, the key unsealed
		b.Fatal(err)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, conns)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) || failed.Load() != nil {
					return
				}
				t0 := time.Now()
				if rate > 0 {
					t0 = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					time.Sleep(time.Until(t0))
				}
				if err := g.do(hc); err != nil {
					failed.Store(&err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(percentile(all, 0.50).Seconds()*1e3, "p50-ms")
	b.ReportMetric(percentile(all, 0.99).Seconds()*1e3, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-us/op")
	b.ReportMetric(0, "ns/op")
}

// processCPU is the CPU time this process (load generator and server)
// used so far: per request it is robust to other jobs on the machine,
// which wall-clock throughput is not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
