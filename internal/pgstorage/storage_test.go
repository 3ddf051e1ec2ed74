package pgstorage_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/internal/pgtest"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/storagetest"
)

var ctx = context.Background()

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open migrates the database of dsn and opens a Storage on it, closed at
// the end of t.
func open(t *testing.T, dsn string, opts pgstorage.Options) *pgstorage.Storage {
	t.Helper()
	if _, err := pgstorage.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	s, err := pgstorage.Open(ctx, dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestConformance runs the Storage conformance suite, each subtest on a
// database of its own; the second handle is a second Open of the same
// database, as a second replica would have.
func TestConformance(t *testing.T) {
	c := pgtest.Shared(t)
	var mu sync.Mutex
	dsns := map[keystore.Storage]string{}
	storagetest.Run(t, func(t *testing.T) keystore.Storage {
		dsn := c.Database(t)
		s := open(t, dsn, pgstorage.Options{})
		mu.Lock()
		dsns[s] = dsn
		mu.Unlock()
		return s
	}, func(t *testing.T, s keystore.Storage) keystore.Storage {
		mu.Lock()
		dsn := dsns[s]
		mu.Unlock()
		return open(t, dsn, pgstorage.Options{})
	})
}

// TestConcurrentMigrators: replicas starting at once on an empty database
// all succeed, and each migration is applied exactly once.
func TestConcurrentMigrators(t *testing.T) {
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	const n = 4
	applied := make([][]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { applied[i], errs[i] = pgstorage.Migrate(ctx, dsn) })
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	if total != pgstorage.SchemaVersion {
		t.Fatalf("%d migrations applied in all, want each of %d once: %v", total, pgstorage.SchemaVersion, applied)
	}
	if again, err := pgstorage.Migrate(ctx, dsn); err != nil || len(again) != 0 {
		t.Fatalf("migrating a current database: %v, %v; want nothing applied", again, err)
	}
	s, err := pgstorage.Open(ctx, dsn, pgstorage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestOpenUnmigrated: Open refuses a database without the schema.
func TestOpenUnmigrated(t *testing.T) {
	c := pgtest.Shared(t)
	_, err := pgstorage.Open(ctx, c.Database(t), pgstorage.Options{})
	if !errors.Is(err, pgstorage.ErrSchemaOutdated) {
		t.Fatalf("Open of an empty database: %v, want ErrSchemaOutdated", err)
	}
}

// TestBadDSN: a connection string that does not parse is refused without
// repeating it (it may hold a password).
func TestBadDSN(t *testing.T) {
	_, err := pgstorage.Open(ctx, "postgres://u:s3cret@host:notaport/db", pgstorage.Options{})
	if !errors.Is(err, keystore.ErrInvalidOptions) {
		t.Fatalf("Open(bad DSN): %v, want ErrInvalidOptions", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error repeats the password: %v", err)
	}
}

// TestChangesReachOtherReplica: a write through one Storage is seen by
// another's Revision (answered from its cache, no query) well within the
// staleness bound, through NOTIFY.
func TestChangesReachOtherReplica(t *testing.T) {
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	a := open(t, dsn, pgstorage.Options{})
	b := open(t, dsn, pgstorage.Options{Poll: time.Hour, MaxStale: time.Hour}) // NOTIFY only
	changed := b.Changes()
	rev, err := a.Write(ctx, keystore.PolicyDocument, []byte("p1"), keystore.NoRevision)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change seen by the other replica within 5 s (NOTIFY)")
	}
	if got, err := b.Revision(ctx, keystore.PolicyDocument); err != nil || got != rev {
		t.Fatalf("other replica's Revision = %q, %v; want %q", got, err, rev)
	}
}

// TestPollBackstop: with notifications lost (a replica listening on a
// connection that missed them), the poll still brings the revision within
// MaxStale.
func TestPollBackstop(t *testing.T) {
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	a := open(t, dsn, pgstorage.Options{})
	b := open(t, dsn, pgstorage.Options{MaxStale: 400 * time.Millisecond})
	// A write that bypasses the trigger's NOTIFY (as a lost notification).
	exec(t, dsn, "ALTER TABLE keystack_documents DISABLE TRIGGER keystack_documents_notify")
	rev, err := a.Write(ctx, keystore.StateDocument, []byte("s1"), keystore.NoRevision)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(400 * time.Millisecond)
	for {
		asked := time.Now()
		got, err := b.Revision(ctx, keystore.StateDocument)
		if err != nil {
			t.Fatal(err)
		}
		if got == rev {
			return
		}
		if asked.After(deadline) {
			t.Fatalf("Revision still %q after MaxStale, want %q", got, rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFailsClosed: with the database down, Revision fails with
// keystore.ErrUnavailable once its revisions are older than MaxStale, and
// never answers from a confirmation older than that; after the database
// is back it answers again.
func TestFailsClosed(t *testing.T) {
	t.Parallel() // waits out leases and timeouts; overlaps the others' waits
	// Stopped below: a cluster of its own.
	c := pgtest.Start(t)
	dsn := c.Database(t)
	const bound = 300 * time.Millisecond
	s := open(t, dsn, pgstorage.Options{MaxStale: bound, QueryTimeout: 500 * time.Millisecond})
	if _, err := s.Write(ctx, keystore.StateDocument, []byte("s"), keystore.NoRevision); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	for {
		asked := time.Now()
		_, err := s.Revision(ctx, keystore.StateDocument)
		if errors.Is(err, keystore.ErrUnavailable) {
			break
		}
		if err != nil {
			t.Fatalf("Revision with the database down: %v, want ErrUnavailable", err)
		}
		if asked.Sub(stopped) > bound {
			t.Fatalf("Revision answered %v after the database stopped, past MaxStale %v", asked.Sub(stopped), bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, _, err := s.Read(ctx, keystore.StateDocument); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Read with the database down: %v, want ErrUnavailable", err)
	}
	if _, err := s.Write(ctx, keystore.StateDocument, []byte("x"), "1"); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Write with the database down: %v, want ErrUnavailable", err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, "the store to answer again", 10*time.Second, func() bool {
		_, err := s.Revision(ctx, keystore.StateDocument)
		return err == nil
	})
}

func exec(t *testing.T, dsn string, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
