package pgstorage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/internal/pgtest"
	"github.com/keystack/keystack/keystore"
)

// TestLeaseFencing: one holder at a time; after the lease expires another
// takes it with a higher epoch; the old holder (paused meanwhile) can
// neither renew nor write through Fenced, and its refused write changes
// nothing; the new holder's fenced write commits.
func TestLeaseFencing(t *testing.T) {
	t.Parallel() // waits out leases and timeouts; overlaps the others' waits
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	a := open(t, dsn, pgstorage.Options{})
	b := open(t, dsn, pgstorage.Options{})
	const ttl = 300 * time.Millisecond
	la, err := a.AcquireLease(ctx, "rotation", "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, "rotation", "b", ttl); !errors.Is(err, pgstorage.ErrLeaseHeld) {
		t.Fatalf("acquiring a held lease: %v, want ErrLeaseHeld", err)
	}
	base, err := a.Fenced(la).Write(ctx, keystore.StateDocument, []byte("by a"), keystore.NoRevision)
	if err != nil {
		t.Fatalf("the holder's fenced write: %v", err)
	}
	time.Sleep(ttl + 100*time.Millisecond) // a is "paused" past its lease
	lb, err := b.AcquireLease(ctx, "rotation", "b", ttl)
	if err != nil {
		t.Fatalf("acquiring an expired lease: %v", err)
	}
	if lb.Epoch <= la.Epoch {
		t.Fatalf("new holder's epoch %d not above the old %d", lb.Epoch, la.Epoch)
	}
	if _, err := a.RenewLease(ctx, la, ttl); !errors.Is(err, pgstorage.ErrLeaseLost) {
		t.Fatalf("old holder's renewal: %v, want ErrLeaseLost", err)
	}
	if _, err := a.Fenced(la).Write(ctx, keystore.StateDocument, []byte("by a, late"), base); !errors.Is(err, pgstorage.ErrLeaseLost) {
		t.Fatalf("old holder's fenced write: %v, want ErrLeaseLost", err)
	}
	data, rev, err := b.Read(ctx, keystore.StateDocument)
	if err != nil || string(data) != "by a" || rev != base {
		t.Fatalf("after the refused write: %q at %q (%v), want %q at %q", data, rev, err, "by a", base)
	}
	if _, err := b.Fenced(lb).Write(ctx, keystore.StateDocument, []byte("by b"), base); err != nil {
		t.Fatalf("new holder's fenced write: %v", err)
	}
	if lb, err = b.RenewLease(ctx, lb, ttl); err != nil {
		t.Fatal(err)
	}
	if err := b.ReleaseLease(ctx, lb); err != nil {
		t.Fatal(err)
	}
	la2, err := a.AcquireLease(ctx, "rotation", "a", ttl)
	if err != nil || la2.Epoch <= lb.Epoch {
		t.Fatalf("acquiring a released lease: epoch %d, %v; want above %d", la2.Epoch, err, lb.Epoch)
	}
}
