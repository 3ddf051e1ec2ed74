package xks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/internal/pkcs11token"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/xks"
)

// stuckBackend is the SoftHSM2 backend with a gate in front of every
// token operation: while the gate is shut, a call blocks, ignoring its
// context as a stuck C_Encrypt would; then it runs on the real token.
type stuckBackend struct {
	*hsm.Backend
	mu      sync.Mutex
	open    chan struct{} // closed when the gate opens
	blocked atomic.Int32  // calls waiting at the gate
	maxIn   atomic.Int32  // most calls inside the backend at once
	in      atomic.Int32
}

func newStuckBackend(b *hsm.Backend) *stuckBackend {
	return &stuckBackend{Backend: b, open: make(chan struct{})}
}

func (b *stuckBackend) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.open:
	default:
		close(b.open)
	}
}

func (b *stuckBackend) enter() func() {
	n := b.in.Add(1)
	for m := b.maxIn.Load(); n > m && !b.maxIn.CompareAndSwap(m, n); m = b.maxIn.Load() {
	}
	b.blocked.Add(1)
	<-b.open
	b.blocked.Add(-1)
	return func() { b.in.Add(-1) }
}

func (b *stuckBackend) RawKeyring(ctx context.Context, ref string) (envelope.Keyring, error) {
	kr, err := b.Backend.RawKeyring(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &stuckKeyring{AESKeyring: kr.(*pkcs11token.AESKeyring), b: b}, nil
}

type stuckKeyring struct {
	*pkcs11token.AESKeyring
	b *stuckBackend
}

func (k *stuckKeyring) SealRaw(ctx context.Context, pt, aad []byte) ([]byte, []byte, error) {
	defer k.b.enter()()
	return k.AESKeyring.SealRaw(ctx, pt, aad)
}

func (k *stuckKeyring) OpenRaw(ctx context.Context, iv, ct, aad []byte) ([]byte, error) {
	defer k.b.enter()()
	return k.AESKeyring.OpenRaw(ctx, iv, ct, aad)
}

func (k *stuckKeyring) KeyBits(ctx context.Context) (int, error) {
	defer k.b.enter()()
	return k.AESKeyring.KeyBits(ctx)
}

// TestBackendDeadline: with a stuck token, every key API answers
// DependencyTimeoutException (503) at the configured deadline, well
// inside AWS KMS's 250 ms; at most maxBackendCalls calls wait inside
// the backend, and a request that finds every slot taken times out too
// without entering it; the health check reports the token UNAVAILABLE
// in time; once the token answers again, so does the proxy.
func TestBackendDeadline(t *testing.T) {
	requireSoftHSM(t)
	var stuck *stuckBackend
	s := newStoreWrapped(t, func(b *hsm.Backend) keystore.Backend { stuck = newStuckBackend(b); return stuck })
	for _, k := range []string{"slow", "slowhealth"} {
		label := addHSMKey(t, s, k)
		t.Cleanup(func() { destroyTokenKey(t, label) }) // the token outlives the test
	}
	cfg := testConfig("slow")
	cfg.HealthKey, cfg.BackendTimeoutMs, cfg.MaxBackendCalls = "slowhealth", 60, 3
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	h := xks.New(cfg, s)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(stuck.release) // no goroutine outlives the test at the gate
	base := srv.URL
	url := base + "/tenant1/kms/xks/v1/keys/slow/"
	bodies := map[string]map[string]any{
		"metadata": {"requestMetadata": meta(alice, "DescribeKey")},
		"encrypt":  {"requestMetadata": meta(alice, "Encrypt"), "plaintext": random(32), "encryptionAlgorithm": "AES_GCM"},
		"decrypt": {"requestMetadata": meta(alice, "Decrypt"), "ciphertext": random(32), "ciphertextMetadata": []byte{1, 0, 0, 0, 1},
			"initializationVector": random(12), "authenticationTag": random(16), "encryptionAlgorithm": "AES_GCM"},
	}
	timesOut := func(op string) {
		t.Helper()
		start := time.Now()
		st, out := call(t, nil, url+op, cred1, bodies[op])
		if st != http.StatusServiceUnavailable || out["errorName"] != "DependencyTimeoutException" {
			t.Errorf("%s on a stuck token: %d %v", op, st, out)
		}
		if took := time.Since(start); took < 60*time.Millisecond {
			t.Errorf("%s answered after %v, before its 60 ms deadline", op, took)
		}
	}
	// Until three calls wait at the gate (a call whose request timed out
	// before it got there gives its slot back), every request times out.
	for i := 0; stuck.blocked.Load() < 3; i++ {
		if i == 100 {
			t.Fatalf("%d calls at the gate after 100 requests, want 3", stuck.blocked.Load())
		}
		timesOut([]string{"metadata", "encrypt", "decrypt"}[i%3])
	}
	// With every slot held, more requests time out and never reach the token.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); timesOut([]string{"metadata", "encrypt", "decrypt"}[i%3]) }()
	}
	wg.Wait()
	if n, m := stuck.blocked.Load(), stuck.maxIn.Load(); n != 3 || m != 3 {
		t.Fatalf("%d calls at the gate, at most %d inside the backend at once; want maxBackendCalls = 3", n, m)
	}
	st, out := call(t, nil, base+"/tenant1/kms/xks/v1/health", cred1, map[string]any{"requestMetadata": map[string]any{"kmsRequestId": "h", "kmsOperation": "KmsHealthCheck"}})
	if st != 200 || out["ekmFleetDetails"].([]any)[0].(map[string]any)["healthStatus"] != "UNAVAILABLE" {
		t.Fatalf("health on a stuck token: %d %v", st, out)
	}
	stuck.release()
	waitFor(t, func() bool { return stuck.in.Load() == 0 })
	cfg.BackendTimeoutMs = 250 // the recovered token on a loaded test machine
	h.SetConfig(cfg)
	roundTrip(t, base, "slow", []byte("after the token recovered"), nil)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
	}
}

// TestBackendLimitsConfig: the deadline cannot exceed AWS KMS's 250 ms,
// nor the bounds be negative; the health response's ten entries bound
// healthKeys.
func TestBackendLimitsConfig(t *testing.T) {
	for name, mut := range map[string]func(*xks.Config){
		"timeout past 250 ms": func(c *xks.Config) { c.BackendTimeoutMs = 251 },
		"negative timeout":    func(c *xks.Config) { c.BackendTimeoutMs = -1 },
		"negative calls":      func(c *xks.Config) { c.MaxBackendCalls = -1 },
		"too many calls":      func(c *xks.Config) { c.MaxBackendCalls = 5000 },
		"ten health keys": func(c *xks.Config) {
			c.HealthKeys = []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10"}
		},
	} {
		c := testConfig("k1")
		mut(c)
		if err := c.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := testConfig("k1")
	c.BackendTimeoutMs, c.MaxBackendCalls = 250, 1
	if err := c.Check(); err != nil {
		t.Fatalf("250 ms and 1 call: %v", err)
	}
}

// TestHealthNeverValidates: the specification lists no
// ValidationException for GetHealthStatus, so a health request whose
// body lacks the request metadata, or is empty, is still answered.
func TestHealthNeverValidates(t *testing.T) {
	base := newProxy(t, newStore(t), testConfig("k1"))
	for name, body := range map[string]any{"no requestMetadata": map[string]any{}, "empty requestMetadata": map[string]any{"requestMetadata": map[string]any{}}} {
		if st, out := call(t, nil, base+"/tenant1/kms/xks/v1/health", cred1, body); st != 200 || out["xksProxyFleetSize"] != 1.0 {
			t.Errorf("%s: %d %v", name, st, out)
		}
	}
}
