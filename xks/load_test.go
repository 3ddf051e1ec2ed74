package xks_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/keystack/keystack/internal/pkcs11token"
)

// loadRate is AWS KMS's default XKS request quota per external key store.
const loadRate = 1800

// TestXKSLoad drives encrypt and decrypt at 1,800 requests/s (open loop:
// each request is sent at its scheduled time, and its latency counts
// from then, so queueing is not hidden) against a SoftHSM2 key and a
// local key, in loadRounds rounds that alternate the four phases (so a
// burst of load from the machine's other users falls on all of them),
// then the closed-loop maximum rate. Its baseline, measured in the same
// run before and after, is the raw PKCS#11 loop: CKM_AES_GCM seal and
// open on the same token without the proxy. Every request must succeed.
// The client signs each phase's request once (as AWS KMS, on other
// machines, would sign each of its own), so the shared cores serve the
// proxy. One second at 1,800/s warms up first, unmeasured.
// XKS_LOAD_REQUESTS sets the count per phase (make bench: 9,000, five
// seconds); the default keeps it a quick test. It prints p50 and p99 of
// all rounds, each round's p99, the rates and the load average.
func TestXKSLoad(t *testing.T) {
	n := 300
	if v := os.Getenv("XKS_LOAD_REQUESTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < loadRounds {
			t.Fatalf("XKS_LOAD_REQUESTS=%q (at least %d)", v, loadRounds)
		}
	}
	s := newStore(t)
	addHSMKey(t, s, "loadhsm")
	base := newProxy(t, s, testConfig("k1", "loadhsm"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 30 * time.Second}
	t.Logf("XKS load average before: %s", loadAverage())
	raw := rawPKCS11Rate(t, n, "rawload1")
	// Warm up (not measured): the client's connections, the goroutine
	// stacks and the heap grow to their steady state, which the first
	// measured phase would otherwise pay for.
	openLoop(t, client, base+"/tenant1/kms/xks/v1/keys/k1/encrypt", map[string]any{"requestMetadata": meta(alice, "Encrypt"),
		"plaintext": random(32), "encryptionAlgorithm": "AES_GCM"}, min(n, loadRate))
	phases := loadPhases(t, base)
	for range loadRounds {
		for _, ph := range phases {
			lat := openLoop(t, client, ph.url, ph.body, n/loadRounds)
			ph.lat, ph.roundP99 = append(ph.lat, lat...), append(ph.roundP99, fmt.Sprintf("%.2f", ms(pct(lat, 99))))
		}
	}
	rates := map[string]float64{}
	for _, ph := range phases {
		slices.Sort(ph.lat)
		rates[ph.name] = closedLoop(t, client, ph.url, ph.body, n, 32)
		t.Logf("XKS %-16s %5d req at %d/s: p50 %6.2f ms  p99 %6.2f ms (rounds %s)  max %6.2f ms | max sustained %6.0f req/s (32 clients)",
			ph.name, len(ph.lat), loadRate, ms(pct(ph.lat, 50)), ms(pct(ph.lat, 99)), strings.Join(ph.roundP99, ", "), ms(ph.lat[len(ph.lat)-1]), rates[ph.name])
	}
	raw2 := rawPKCS11Rate(t, n, "rawload2")
	t.Logf("XKS baseline raw PKCS#11 seal+open on SoftHSM2 (one session): %6.0f pairs/s before, %6.0f after", raw, raw2)
	t.Logf("XKS encrypt SoftHSM2 max sustained / raw PKCS#11 seal+open rate: %.2f x (an encrypt with CDIV seals and opens once)",
		rates["encrypt SoftHSM2"]/((raw+raw2)/2))
	for _, op := range []string{"encrypt", "decrypt"} {
		t.Logf("XKS %-7s max sustained rate SoftHSM2 / local key: %.2f x", op, rates[op+" SoftHSM2"]/rates[op+" local"])
	}
	t.Logf("XKS load average after: %s", loadAverage())
}

// loadRounds is how many alternating rounds TestXKSLoad splits each
// open-loop phase into.
const loadRounds = 3

type loadPhase struct {
	name, url string
	body      any
	lat       []time.Duration
	roundP99  []string
}

// loadPhases returns the four measured phases: encrypt (CDIV requested)
// and decrypt on the SoftHSM2 key and on the local key.
func loadPhases(t *testing.T, base string) []*loadPhase {
	var out []*loadPhase
	for _, key := range []string{"loadhsm", "k1"} {
		enc := encryptBody(t, base, key)
		for _, op := range []string{"encrypt", "decrypt"} {
			body := map[string]any{"requestMetadata": meta(alice, "Encrypt"), "plaintext": random(32),
				"additionalAuthenticatedData": random(64), "encryptionAlgorithm": "AES_GCM", "ciphertextDataIntegrityValueAlgorithm": "SHA_256"}
			if op == "decrypt" {
				body = decryptBody(enc, []byte("aad"))
			}
			out = append(out, &loadPhase{name: op + " " + map[string]string{"k1": "local", "loadhsm": "SoftHSM2"}[key],
				url: base + "/tenant1/kms/xks/v1/keys/" + key + "/" + op, body: body})
		}
	}
	return out
}

// loadAverage is /proc/loadavg's first three fields ("unknown" elsewhere).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// rawPKCS11Rate is the rate of n CKM_AES_GCM seal and open pairs of 32
// bytes on a fresh SoftHSM2 AES-256 key labeled tokenLabel(name), one
// after another.
func rawPKCS11Rate(t *testing.T, n int, name string) float64 {
	label := tokenLabel(name)
	ctx := context.Background()
	tok, err := pkcs11token.Open(ctx, &pkcs11token.URI{Token: "X", Module: softhsmModule}, pkcs11token.Options{Prompt: func(context.Context, string) (string, error) { return "1234", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if err := tok.GenerateAESKey(ctx, label, []byte(label)); err != nil {
		t.Fatal(err)
	}
	kr, err := tok.AESKeyring(ctx, label)
	if err != nil {
		t.Fatal(err)
	}
	pt, aad := random(32), random(64)
	start := time.Now()
	for range n {
		iv, ct, err := kr.SealRaw(ctx, pt, aad)
		if err == nil {
			_, err = kr.OpenRaw(ctx, iv, ct, aad)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

func encryptBody(t *testing.T, base, key string) map[string]any {
	st, out := call(t, nil, base+"/tenant1/kms/xks/v1/keys/"+key+"/encrypt", cred1, map[string]any{
		"requestMetadata": meta(alice, "Encrypt"), "plaintext": random(32), "additionalAuthenticatedData": []byte("aad"), "encryptionAlgorithm": "AES_GCM"})
	if st != 200 {
		t.Fatalf("encrypt: %d %v", st, out)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100]
}

// signed returns a request for body signed now with cred1.
func signed(url string, raw []byte) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(raw)
	creds := aws.Credentials{AccessKeyID: cred1.AccessKeyID, SecretAccessKey: cred1.SecretAccessKey}
	return req, v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms-xks-proxy", "eu-west-1", time.Now())
}

// send sends a copy of the signed request req with body raw.
func send(client *http.Client, req *http.Request, raw []byte) error {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(raw))
	resp, err := client.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d %s", req.URL, resp.StatusCode, b)
	}
	return nil
}

// openLoop sends n requests at loadRate and returns the sorted latencies.
func openLoop(t *testing.T, client *http.Client, url string, body any, n int) []time.Duration {
	raw, _ := json.Marshal(body)
	req, err := signed(url, raw)
	if err != nil {
		t.Fatal(err)
	}
	lat := make([]time.Duration, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second / loadRate)
		time.Sleep(time.Until(at))
		wg.Go(func() {
			if err := send(client, req, raw); err != nil && failed.Add(1) == 1 {
				t.Error(err)
			}
			lat[i] = time.Since(at)
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), n)
	}
	slices.Sort(lat)
	return lat
}

// closedLoop sends n requests from c clients as fast as answered and
// returns the rate.
func closedLoop(t *testing.T, client *http.Client, url string, body any, n, c int) float64 {
	raw, _ := json.Marshal(body)
	req, err := signed(url, raw)
	if err != nil {
		t.Fatal(err)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := send(client, req, raw); err != nil && failed.Add(1) == 1 {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds()
}
