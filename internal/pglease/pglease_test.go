package pglease_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/pglease"
	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/internal/pgtest"
	"github.com/keystack/keystack/internal/rotationd"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/rotation"
)

var ctx = context.Background()

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const ttl = 400 * time.Millisecond

// replica is one daemon's view of the shared store: its own Storage (its
// own connections), lease handle and Store opened on the fenced Storage.
type replica struct {
	st    *pgstorage.Storage
	lease *pglease.Lease
	store *keystore.Store
}

// setup makes a store in PostgreSQL with key "k" rotating every hour,
// created two hours ago, and
// returns n replicas of it, sharing the audit directory (the file log
// takes several writers).
func setup(t *testing.T, n int) []replica {
	t.Helper()
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	if _, err := pgstorage.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var rs []replica
	for i := range n {
		st, err := pgstorage.Open(ctx, dsn, pgstorage.Options{LockLease: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		if i == 0 {
			s, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: "user:test", Storage: st})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			// k was made two hours ago: due now, and not again once rotated.
			past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
			if s, err = keystore.Open(dir, keystore.OpenOptions{Principal: "user:test", Storage: st, Now: past}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateKey(ctx, "k", keystore.CreateKeyOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SetRotationSettings(ctx, "k", &keystore.RotationSettings{Every: time.Hour}); err != nil {
				t.Fatal(err)
			}
			s.Close()
		}
		l := pglease.New(st, "replica-"+string(rune('a'+i)), ttl)
		s, err := keystore.Open(dir, keystore.OpenOptions{Principal: "user:test", Storage: l.Storage()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		rs = append(rs, replica{st: st, lease: l, store: s})
	}
	return rs
}

func primary(t *testing.T, s *keystore.Store) int {
	t.Helper()
	ki, err := s.DescribeKey(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	return ki.Primary
}

// TestFencedRotation: the leader decides under the store's lock that k is
// due, then loses the lease (it stops renewing, as a paused process
// would) to another daemon; its rotation write then fails with
// ErrLeaseLost and changes nothing, and the new leader rotates k once.
func TestFencedRotation(t *testing.T) {
	rs := setup(t, 2)
	a, b := rs[0], rs[1]
	if _, err := a.lease.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.lease.Hold(ctx); !errors.Is(err, rotationd.ErrLeaseHeld) {
		t.Fatalf("second holder: %v, want ErrLeaseHeld", err)
	}
	locked, err := a.store.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := locked.ListKeys(ctx); err != nil || len(ks) != 1 || ks[0].Rotation == nil {
		t.Fatalf("keys under the lock: %v, %v", ks, err)
	}
	pgtest.WaitFor(t, "b to take the lease over", 30*time.Second, func() bool { _, err := b.lease.Hold(ctx); return err == nil })
	if b.lease.Epoch() <= a.lease.Epoch() {
		t.Fatalf("b's epoch %d not above a's %d", b.lease.Epoch(), a.lease.Epoch())
	}
	_, err = locked.RotateKey(ctx, "k", "late")
	locked.Unlock()
	if !errors.Is(err, rotation.ErrLeaseLost) {
		t.Fatalf("the old leader's rotation: %v, want ErrLeaseLost", err)
	}
	if v := primary(t, b.store); v != 1 {
		t.Fatalf("after the fenced write: primary v%d, want v1", v)
	}
	if _, err := a.lease.Hold(ctx); !errors.Is(err, rotationd.ErrLeaseHeld) {
		t.Fatalf("old leader's renewal: %v, want ErrLeaseHeld", err)
	}
	future := func() time.Time { return time.Now().Add(2 * time.Hour) }
	rep, err := (&rotation.Runner{Store: b.store, Now: future}).RunOnce(ctx)
	if err != nil || len(rep.Rotated) != 1 || rep.Rotated[0].NewVersion != 2 {
		t.Fatalf("new leader's pass: %+v, %v; want k rotated to v2", rep, err)
	}
	rep, err = (&rotation.Runner{Store: a.store, Now: future}).RunOnce(ctx)
	if !errors.Is(err, rotation.ErrLeaseLost) || len(rep.Rotated) != 0 || len(rep.Failed) != 0 {
		t.Fatalf("old leader's pass: %+v, %v; want it stopped by ErrLeaseLost, nothing rotated or failed", rep, err)
	}
	if v := primary(t, a.store); v != 2 {
		t.Fatalf("primary v%d, want v2", v)
	}
}

// TestDaemonsTakeOver runs three daemons on one store: exactly one leads
// and rotates the due key once; when it stops (releasing the lease),
// another takes over, and rotates nothing more (the key is not due).
func TestDaemonsTakeOver(t *testing.T) {
	rs := setup(t, 3)
	cancels := make([]context.CancelFunc, len(rs))
	done := make([]chan error, len(rs))
	for i, r := range rs {
		dctx, cancel := context.WithCancel(ctx)
		cancels[i], done[i] = cancel, make(chan error, 1)
		d := &rotationd.Daemon{Runner: &rotation.Runner{Store: r.store},
			Interval: time.Hour, Lease: r.lease, LeaseTTL: ttl}
		go func() { done[i] <- d.Run(dctx) }()
	}
	t.Cleanup(func() {
		for i := range rs {
			cancels[i]()
			<-done[i]
		}
	})
	leader := func() int {
		for i, r := range rs {
			if r.lease.Epoch() != 0 {
				return i
			}
		}
		return -1
	}
	pgtest.WaitFor(t, "a leader to rotate k", 30*time.Second, func() bool { return leader() >= 0 && primary(t, rs[0].store) == 2 })
	first := leader()
	cancels[first]()
	if err := <-done[first]; err != nil {
		t.Fatal(err)
	}
	done[first] <- nil // for the cleanup
	pgtest.WaitFor(t, "another daemon to lead", 30*time.Second, func() bool { l := leader(); return l >= 0 && l != first })
	if v := primary(t, rs[0].store); v != 2 {
		t.Fatalf("primary v%d after the takeover, want v2 (rotated once)", v)
	}
}
