package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// benchPrincipal owns the benchmark store; the last of the 100 statements
// is the one that grants it the encrypt path.
const benchPrincipal = "user:bench"

// benchPolicy returns a 100-statement policy in the shape of
// policy.BenchmarkEvaluate100Statements: 99 statements for other principals
// and keys, each with an encryption-context condition, then the statement
// that allows benchPrincipal to generate data keys under and encrypt with
// key/payments when the context says dept=finance. Every request therefore
// evaluates all 100 statements.
func benchPolicy(tb testing.TB) *policy.Policy {
	tb.Helper()
	var ss []string
	for i := range 99 {
		ss = append(ss, fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Principal":["user:u%d","group:g%d"],`+
			`"Action":["keystack:Encrypt","keystack:Decrypt"],"Resource":"key/k%d*",`+
			`"Condition":{"StringEquals":{"keystack:EncryptionContext/dept":"d%d"}}}`, i, i, i, i, i))
	}
	ss = append(ss, `{"Sid":"Payments","Effect":"Allow","Principal":"`+benchPrincipal+`",`+
		`"Action":["keystack:Encrypt","keystack:GenerateDataKey"],"Resource":"key/payments",`+
		`"Condition":{"StringEquals":{"keystack:EncryptionContext/dept":"finance"}}}`)
	doc := `{"Version":"` + policy.Version + `","Statement":[` + strings.Join(ss, ",") + `]}`
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// newBenchStore returns the directory of an unsealed store (no KDF in the
// setup; the data path is the same as a sealed store's once unlocked)
// owned by benchPrincipal, holding the AES key "payments" and benchPolicy.
func newBenchStore(b testing.TB) string {
	b.Helper()
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "ks")
	s, err := Init(dir, InitOptions{Insecure: true, Owner: benchPrincipal})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.CreateKey(ctx, "payments", CreateKeyOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := s.Gate().PutPolicy(ctx, benchPolicy(b), policy.PutOptions{BypassLockoutSafetyCheck: true}); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// auditLines counts the lines of the store's audit log.
func auditLines(b *testing.B, dir string) int {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(dir, gate.AuditFile))
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Count(data, []byte{'\n'})
}

// processCPU returns the process's user and system CPU time in ns: on a
// shared, loaded machine it measures the work an operation costs (all
// goroutines, the GC and system calls included) better than wall time.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkEncrypt1KiBPolicyAudit measures envelope.EncryptBytes of 1 KiB
// under the store key "payments", in one run:
//
//   - off: the store's own keyring path with no decision point (a Store
//     built without Open has none): the same raw AES key, the same
//     EncryptKeyring call, no policy, no audit.
//   - batch: the store as Open builds it, deciding every message
//     (keystack:GenerateDataKey and keystack:Encrypt) against the
//     100-statement benchPolicy and appending both decisions to audit.log
//     in audit.Batch mode (fsync at most every 100 ms).
//   - sync: the same with audit.Sync (an fsync before each decision
//     returns).
//
// The data-key cache is off in all three: every message gets a fresh data
// key, the ESDK default. (With OpenOptions.Cache the gate sits in front of
// the cache and runs per message all the same, as TestGateAuditsCacheHits
// checks; only the denominator would shrink.) batch and sync check that the log grew by at least two records
// per message, so the gate really ran, and report gate-µs/op and
// overhead-% against off from the same run, in wall time and in process
// CPU time (cpu-ns/op; gate-cpu-µs/op, cpu-overhead-%), which is steadier
// when other work shares the machine. Scripts that run a variant alone can
// compute the ratios from the ns/op and cpu-ns/op of the three names.
func BenchmarkEncrypt1KiBPolicyAudit(b *testing.B) {
	ctx := context.Background()
	pt := bytes.Repeat([]byte{'x'}, 1024)
	opts := envelope.EncryptOptions{Context: map[string]string{"dept": "finance", "purpose": "bench"}}
	var offNs, offCPU float64
	run := func(b *testing.B, dir string, s *Store, gated bool) {
		kr, err := s.EncryptKeyring(ctx, "payments")
		if err != nil {
			b.Fatal(err)
		}
		isGated := false
		if s.enf != nil { // the "off" store, built without Open, has no gate
			_, isGated = s.enf.KeyOf(kr)
		}
		if isGated != gated {
			b.Fatalf("keyring gated = %v, want %v", isGated, gated)
		}
		before := 0
		if gated {
			before = auditLines(b, dir)
		}
		b.SetBytes(int64(len(pt)))
		b.ReportAllocs()
		cpu0 := processCPU(b)
		for b.Loop() {
			if _, err := envelope.EncryptBytes(ctx, pt, kr, opts); err != nil {
				b.Fatal(err)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		cpuNs := float64(processCPU(b)-cpu0) / float64(b.N)
		b.ReportMetric(cpuNs, "cpu-ns/op")
		if !gated {
			offNs, offCPU = ns, cpuNs
			return
		}
		if got := auditLines(b, dir) - before; got < 2*b.N {
			b.Fatalf("audit log grew by %d lines for %d messages, want at least %d", got, b.N, 2*b.N)
		}
		if offNs > 0 {
			b.ReportMetric((ns-offNs)/1e3, "gate-µs/op")
			b.ReportMetric(100*(ns-offNs)/offNs, "overhead-%")
			b.ReportMetric((cpuNs-offCPU)/1e3, "gate-cpu-µs/op")
			b.ReportMetric(100*(cpuNs-offCPU)/offCPU, "cpu-overhead-%")
		}
	}
	b.Run("off", func(b *testing.B) {
		dir := newBenchStore(b)
		run(b, dir, &Store{dir: dir, st: newDirStorage(dir), now: time.Now, principal: benchPrincipal}, false)
	})
	for _, v := range []struct {
		name string
		sync bool
	}{{"batch", false}, {"sync", true}} {
		b.Run(v.name, func(b *testing.B) {
			dir, s := openBenchStore(b, v.sync)
			run(b, dir, s, true)
		})
	}
}

// openBenchStore opens a new bench store with its gate and audit log in
// sync or batch mode; the store closes when b ends.
func openBenchStore(b *testing.B, sync bool) (string, *Store) {
	dir := newBenchStore(b)
	s, err := Open(dir, OpenOptions{Principal: benchPrincipal, AuditSync: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return dir, s
}

// BenchmarkPolicyAuditGate measures the gate alone, in absolute time: the
// decisions one encrypted message costs (keystack:GenerateDataKey and
// keystack:Encrypt on the store key, against the 100-statement benchPolicy)
// and their audit records, in Batch and Sync mode. It is the numerator of
// BenchmarkEncrypt1KiBPolicyAudit's overhead without that benchmark's
// envelope work, so it stays readable when the machine is noisy.
func BenchmarkPolicyAuditGate(b *testing.B) {
	ec := map[string]string{"dept": "finance", "purpose": "bench"}
	ctx := context.Background()
	for _, v := range []struct {
		name string
		sync bool
	}{{"batch", false}, {"sync", true}} {
		b.Run(v.name, func(b *testing.B) {
			dir, s := openBenchStore(b, v.sync)
			before := auditLines(b, dir)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if err := s.authorize2(ctx, policy.ActionGenerateDataKey, policy.ActionEncrypt, "payments", 1, ec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			if got := auditLines(b, dir) - before; got < 2*b.N {
				b.Fatalf("audit log grew by %d lines for %d gates, want at least %d", got, b.N, 2*b.N)
			}
		})
	}
}

// TestGateAuditsCacheHits backs the benchmark's claim about the data-key
// cache: with OpenOptions.Cache on, a message served from the cache is
// still decided by the policy and audited, two decision records
// (GenerateDataKey, Encrypt) per message, written together.
func TestGateAuditsCacheHits(t *testing.T) {
	ctx := context.Background()
	dir := newBenchStore(t)
	s, err := Open(dir, OpenOptions{Principal: benchPrincipal, Cache: &keyring.CacheOptions{MaxAge: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := s.EncryptKeyring(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	opts := envelope.EncryptOptions{Context: map[string]string{"dept": "finance"}}
	const n = 4
	for range n {
		if _, err := envelope.EncryptBytes(ctx, []byte("hello"), kr, opts); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.caches[keyring.VersionedKeyName("payments", 1)].Stats(); st.EncryptHits != n-1 {
		t.Fatalf("cache stats %+v, want %d hits", st, n-1)
	}
	opts.Context["dept"] = "hr" // refused by the policy, before the cache
	if _, err := envelope.EncryptBytes(ctx, []byte("hello"), kr, opts); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("encrypt outside the policy: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, gate.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	for e, err := range audit.Query(f, audit.Filter{Principal: benchPrincipal, Key: "payments"}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Action+" "+e.Decision)
	}
	want := []string{policy.ActionCreateKey + " Allow"}
	for range n {
		want = append(want, policy.ActionGenerateDataKey+" Allow", policy.ActionEncrypt+" Allow")
	}
	want = append(want, policy.ActionGenerateDataKey+" Deny")
	if !slices.Equal(got, want) {
		t.Fatalf("audit records\n got %q\nwant %q", got, want)
	}
}
