package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/internal/pgtest"
)

// TestReplicaBench is make bench's key-server replica section (skipped
// unless KEYSTACK_REPLICA_BENCH=1): GenerateDataKey throughput and p99
// through one replica and through three on one database (rounds
// alternated, the one-replica figure the baseline of the same round),
// database statements per request (counted in PostgreSQL's statement log),
// and the client-observed gap when a replica is killed under load.
func TestReplicaBench(t *testing.T) {
	if os.Getenv("KEYSTACK_REPLICA_BENCH") == "" {
		t.Skip("make bench runs it: KEYSTACK_REPLICA_BENCH=1")
	}
	n := 4000
	if v, err := strconv.Atoi(os.Getenv("KEYSTACK_REPLICA_BENCH_REQUESTS")); err == nil && v > 0 {
		n = v
	}
	const workers = 8
	rs := startReplicas(t, newPGStoreOn(t, pgtest.Start(t)), 3) // its settings and log are the bench's
	pool, err := pgxpool.New(context.Background(), rs.p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	benchRun(t, rs, []int{0, 1, 2}, n/4, workers) // warm-up: connections, caches
	var one, three []benchResult
	for range 3 {
		one = append(one, benchRun(t, rs, []int{0}, n, workers))
		three = append(three, benchRun(t, rs, []int{0, 1, 2}, n, workers))
	}
	r1, r3 := median(one), median(three)
	t.Logf("replicas: GenerateDataKey, %d clients, %d requests per round, 3 rounds alternated, medians", workers, n)
	t.Logf("replicas: 1 replica   %7.0f req/s  p99 %6.2f ms", r1.rate, r1.p99ms)
	t.Logf("replicas: 3 replicas  %7.0f req/s  p99 %6.2f ms  (%.2f x 1 replica, same database, same machine)", r3.rate, r3.p99ms, r3.rate/r1.rate)
	commits, other := dbPerRequest(t, rs, pool, n, workers)
	t.Logf("replicas: database statements per request (3 replicas, warm caches, every statement logged): %.3f audit group commits, %.3f others (revision polls, pool pings; nothing else on the hot path)", commits, other)
	gap, retried := failoverGap(t, rs, workers)
	t.Logf("replicas: kill -9 of one of 3 under load: longest client-observed gap %v, %d requests retried on another replica, none failed", gap.Round(time.Millisecond), retried)
}

type benchResult struct{ rate, p99ms float64 }

func median(rs []benchResult) benchResult {
	rates := make([]float64, len(rs))
	p99s := make([]float64, len(rs))
	for i, r := range rs {
		rates[i], p99s[i] = r.rate, r.p99ms
	}
	slices.Sort(rates)
	slices.Sort(p99s)
	return benchResult{rate: rates[len(rates)/2], p99ms: p99s[len(p99s)/2]}
}

// benchRun makes n GenerateDataKey requests from workers clients spread
// over the replicas on, and returns the rate and the p99 latency.
func benchRun(t *testing.T, rs *replicaSet, on []int, n, workers int) benchResult {
	t.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := rs.client(on[w%len(on)])
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if _, err := c.GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{KeyId: aws.String("k"),
					KeySpec: types.DataKeySpecAes256}); err != nil {
					failed.Add(1)
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d requests failed", f)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return benchResult{rate: float64(n) / took.Seconds(), p99ms: float64(all[len(all)*99/100]) / 1e6}
}

// dbPerRequest runs n requests over three replicas with every statement
// logged (log_statement = all; this run is not timed) and returns the
// audit group commits and the other statements (revision polls, pool
// pings, anything on the hot path) per request.
func dbPerRequest(t *testing.T, rs *replicaSet, pool *pgxpool.Pool, n, workers int) (float64, float64) {
	t.Helper()
	setLog := func(v string) {
		for _, q := range []string{"ALTER SYSTEM SET log_statement = '" + v + "'", "SELECT pg_reload_conf()"} {
			if _, err := pool.Exec(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}
	}
	setLog("all")
	defer setLog("none")
	fi, err := os.Stat(rs.p.cluster.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "statements to be logged", func() bool {
		_, err := pool.Exec(context.Background(), "SELECT 'keystack-bench-marker'")
		b, _ := os.ReadFile(rs.p.cluster.LogFile())
		return err == nil && bytes.Contains(b[fi.Size():], []byte("keystack-bench-marker"))
	})
	fi, _ = os.Stat(rs.p.cluster.LogFile())
	benchRun(t, rs, []int{0, 1, 2}, n, workers)
	b, err := os.ReadFile(rs.p.cluster.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	var audit, other int
	for _, line := range bytes.Split(b[fi.Size():], []byte("\n")) {
		switch {
		case !bytes.Contains(line, []byte("statement: ")) && !bytes.Contains(line, []byte("execute ")):
		case bytes.Contains(line, []byte("UPDATE keystack_audit_chains")) || bytes.Contains(line, []byte("WITH a AS (")):
			audit++
		case bytes.Contains(line, []byte("ALTER SYSTEM")) || bytes.Contains(line, []byte("pg_reload_conf")):
		default:
			other++
		}
	}
	return float64(audit) / float64(n), float64(other) / float64(n)
}

// failoverGap kills replica 3 under the failover client's load and
// returns the longest time between two successes seen by any client.
func failoverGap(t *testing.T, rs *replicaSet, workers int) (time.Duration, int64) {
	t.Helper()
	var mu sync.Mutex
	last := map[int]time.Time{}
	var gap time.Duration
	l := startLoadObserved(rs, workers, func(w int, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if p, ok := last[w]; ok && at.Sub(p) > gap {
			gap = at.Sub(p)
		}
		last[w] = at
	})
	defer l.stop()
	l.waitOK(t, 500, "500 successes before the kill", rs.procs...)
	rs.procs[2].cmd.Process.Kill()
	<-rs.procs[2].done
	l.waitOK(t, 1000, "1000 successes after the kill", rs.procs[0], rs.procs[1])
	l.stop()
	if len(l.failures) > 0 {
		t.Fatalf("%d requests failed after one retry: %v", len(l.failures), l.failures[0])
	}
	mu.Lock()
	defer mu.Unlock()
	return gap, l.retried.Load()
}
