package pgaudit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/pgaudit"
	"github.com/keystack/keystack/internal/pgtest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// newDB returns the shared cluster and a pool on a fresh database of it
// with the audit tables.
func newDB(t *testing.T) (*pgtest.Cluster, *pgxpool.Pool) {
	t.Helper()
	c := pgtest.Shared(t)
	return c, newPool(t, c)
}

// newOwnDB is newDB on a cluster of the test's own, which it may stop.
func newOwnDB(t *testing.T) (*pgtest.Cluster, *pgxpool.Pool) {
	t.Helper()
	c := pgtest.Start(t)
	return c, newPool(t, c)
}

func newPool(t *testing.T, c *pgtest.Cluster) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), c.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgaudit.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func open(t *testing.T, pool *pgxpool.Pool, chain string) *pgaudit.Log {
	t.Helper()
	l, err := pgaudit.Open(context.Background(), pool, chain, pgaudit.Options{MACKey: testKey, CommitTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func rec(i int) audit.Record {
	return audit.Record{Principal: "service:test", Action: "kms:GenerateDataKey", Resource: "k1",
		Outcome: "ok", RequestID: fmt.Sprintf("req-%d", i), EncryptionContext: map[string]string{"n": fmt.Sprint(i)}}
}

func verify(t *testing.T, pool *pgxpool.Pool) *pgaudit.Report {
	t.Helper()
	rep, err := pgaudit.Verify(context.Background(), pool, audit.Key{MAC: testKey})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

// appendN appends n records from n goroutines, failing t on any error.
func appendN(t *testing.T, l *pgaudit.Log, from, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := from; i < from+n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- l.Append(context.Background(), rec(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Append: %v", err) // Errorf: callers run this in goroutines too
			return
		}
	}
}

// TestChainsVerifyAndContinue: two chains written concurrently, one
// reopened (continuing its chain), verify every record of both.
func TestChainsVerifyAndContinue(t *testing.T) {
	_, pool := newDB(t)
	a, b := open(t, pool, "replica-a"), open(t, pool, "replica-b")
	appendN(t, a, 0, 200)
	appendN(t, b, 1000, 100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(context.Background(), rec(0)); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	a = open(t, pool, "replica-a")
	appendN(t, a, 300, 50)
	rep := verify(t, pool)
	if len(rep.Chains) != 2 || rep.Chains[0].Entries != 251 || rep.Chains[0].Checkpoints != 1 || rep.Chains[1].Entries != 100 {
		t.Fatalf("report %+v, want replica-a 250 records and a closing checkpoint, replica-b 100", rep)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(DISTINCT line::jsonb->>'request_id') FROM keystack_audit_records`).Scan(&n); err != nil || n != 350 {
		t.Fatalf("distinct request IDs %d (%v), want 350", n, err)
	}
}

// TestGroupCommit holds the chain's anchor row locked so the first commit
// waits, queues many appends behind it, and checks that they share few
// statements once the row is free.
func TestGroupCommit(t *testing.T) {
	_, pool := newDB(t)
	l := open(t, pool, "r1")
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM keystack_audit_chains WHERE chain = 'r1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	const n = 200
	done := make(chan struct{})
	go func() { appendN(t, l, 0, n); close(done) }()
	pgtest.WaitFor(t, "the first commit to be under way", 30*time.Second, func() bool { return l.Commits() >= 1 })
	time.Sleep(50 * time.Millisecond) // let the other appends queue (not an assertion)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if c := l.Commits(); c > n/4 {
		t.Errorf("%d appends took %d commits, want them grouped", n, c)
	}
	if rep := verify(t, pool); rep.Records != n {
		t.Fatalf("verified %d records, want %d", rep.Records, n)
	}
}

// TestTwoWritersOneChain: two Logs of one chain (a replica restarted
// while its old process lingers) continue each other's chain.
func TestTwoWritersOneChain(t *testing.T) {
	_, pool := newDB(t)
	a, b := open(t, pool, "same"), open(t, pool, "same")
	var wg sync.WaitGroup
	for i, l := range []*pgaudit.Log{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				appendN(t, l, i*1000+j*10, 10)
			}
		}()
	}
	wg.Wait()
	if rep := verify(t, pool); rep.Records != 200 || len(rep.Chains) != 1 {
		t.Fatalf("report %+v, want one chain of 200", rep)
	}
}

// TestFailClosedAcrossRestart stops PostgreSQL: appends fail (wrapping
// audit.ErrWrite) within the commit timeout and none is acknowledged;
// after a start they succeed again on the same chain.
func TestFailClosedAcrossRestart(t *testing.T) {
	t.Parallel() // a cluster of its own, stopped and started: overlaps the others
	c, pool := newOwnDB(t)
	l := open(t, pool, "r1")
	appendN(t, l, 0, 10)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		err := l.Append(context.Background(), rec(100+i))
		if !errors.Is(err, audit.ErrWrite) {
			t.Fatalf("Append with the database down: %v, want ErrWrite", err)
		}
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, "appends to succeed again", 30*time.Second, func() bool { return l.Append(context.Background(), rec(200)) == nil })
	appendN(t, l, 300, 10)
	if rep := verify(t, pool); rep.Records != 21 {
		t.Fatalf("verified %d records, want 21 (none of the refused ones)", rep.Records)
	}
}

// TestOversizedRecordFailsAlone: a record too large to store fails its own
// append, not the others committed with it.
func TestOversizedRecordFailsAlone(t *testing.T) {
	_, pool := newDB(t)
	l := open(t, pool, "r1")
	big := rec(1)
	big.Reason = strings.Repeat("x", audit.MaxLineSize)
	if err := l.Append(context.Background(), big); err == nil {
		t.Fatal("oversized record appended")
	}
	if err := l.Append(context.Background(), rec(2), audit.Record{Type: "bogus"}); err == nil {
		t.Fatal("record of an unknown type appended")
	}
	appendN(t, l, 10, 5)
	if rep := verify(t, pool); rep.Records != 5 {
		t.Fatalf("verified %d records, want 5", rep.Records)
	}
}

// TestWriterAfterSetAside: a writer whose chain was set aside at the end
// it knew (audit reset-anchor) continues on a new chain of its name from
// its next append, without reopening; a writer whose chain was deleted
// instead (not set aside) keeps failing closed.
func TestWriterAfterSetAside(t *testing.T) {
	ctx := context.Background()
	_, pool := newDB(t)
	a := open(t, pool, "replica-a")
	appendN(t, a, 0, 10)
	d := &pgaudit.Destination{Pool: pool, Chain: "cli:reset"}
	if _, err := d.SetAside(ctx, "damaged", time.Now()); err != nil {
		t.Fatal(err)
	}
	appendN(t, a, 100, 5)
	rep := verify(t, pool)
	if len(rep.Chains) != 1 || rep.Chains[0].Chain != "replica-a" || rep.Chains[0].Entries != 5 {
		t.Fatalf("report %+v, want replica-a anew with the 5 records after the reset", rep)
	}
	b := open(t, pool, "replica-b")
	appendN(t, b, 200, 3)
	if _, err := pool.Exec(ctx, `DELETE FROM keystack_audit_chains WHERE chain = 'replica-b'`); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, rec(300)); !errors.Is(err, audit.ErrWrite) {
		t.Fatalf("Append to a deleted chain: %v, want ErrWrite (fail closed)", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM keystack_audit_chains WHERE chain = 'replica-b'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("deleted chain's anchor rows: %d (%v), want 0: the writer must not start it anew", n, err)
	}
}
