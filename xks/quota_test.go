package xks_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/xks"
)

// TestQuota: a prefix with rateLimit 1/s and rateBurst 3 serves three
// requests at once, throttles the fourth with the specification's
// ThrottlingException (HTTP 429), serves one more a second later; requests
// that fail authentication use none of the quota; another prefix has its
// own; a reload that keeps the quota keeps the bucket, one that changes it
// starts a full one.
func TestQuota(t *testing.T) {
	cfg := &xks.Config{HealthKey: "health", Prefixes: []xks.Prefix{
		{Path: "/tenant1", Credentials: []xks.Credential{cred1}, Keys: []string{"k1"}, RateLimit: 1, RateBurst: 3},
		{Path: "/tenant2", Credentials: []xks.Credential{cred1}, Keys: []string{"k1"}},
	}}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	h := xks.New(cfg, newStore(t))
	var mu sync.Mutex
	now := time.Now()
	xks.SetClock(h, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	body := map[string]any{"requestMetadata": meta(alice, "DescribeKey")}
	expect := func(step, prefix string, c xks.Credential, want int) {
		t.Helper()
		st, out := call(t, nil, srv.URL+prefix+"/kms/xks/v1/keys/k1/metadata", c, body)
		if st != want || (want == 429 && out["errorName"] != "ThrottlingException") {
			t.Errorf("%s: %d %v, want %d", step, st, out, want)
		}
	}
	for range 5 {
		expect("bad secret", "/tenant1", xks.Credential{AccessKeyID: cred1.AccessKeyID, SecretAccessKey: cred2.SecretAccessKey}, 401)
	}
	for range 3 {
		expect("within the burst", "/tenant1", cred1, 200)
	}
	expect("above the burst", "/tenant1", cred1, 429)
	expect("other prefix", "/tenant2", cred1, 200)
	advance(time.Second)
	expect("a second later", "/tenant1", cred1, 200)
	expect("a second later, again", "/tenant1", cred1, 429)

	same := *cfg
	same.Prefixes = append([]xks.Prefix(nil), cfg.Prefixes...)
	h.SetConfig(&same)
	expect("reload, same quota", "/tenant1", cred1, 429)
	changed := same
	changed.Prefixes = append([]xks.Prefix(nil), same.Prefixes...)
	changed.Prefixes[0].RateBurst = 2
	h.SetConfig(&changed)
	expect("reload, new quota", "/tenant1", cred1, 200)
	expect("reload, new quota", "/tenant1", cred1, 200)
	expect("reload, new quota, above", "/tenant1", cred1, 429)
}

// TestQuotaConfig: a negative or absurd quota is a configuration error.
func TestQuotaConfig(t *testing.T) {
	for _, p := range []xks.Prefix{
		{RateLimit: -1}, {RateLimit: 10, RateBurst: -1}, {RateLimit: 2e6},
	} {
		p.Path, p.Credentials, p.Keys = "/t", []xks.Credential{cred1}, []string{"k1"}
		cfg := &xks.Config{HealthKey: "health", Prefixes: []xks.Prefix{p}}
		if err := cfg.Check(); !errors.Is(err, xks.ErrConfig) || !strings.Contains(err.Error(), "rateLimit") {
			t.Errorf("rateLimit %v, rateBurst %d: %v", p.RateLimit, p.RateBurst, err)
		}
	}
}
