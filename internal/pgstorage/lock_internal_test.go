package pgstorage

import (
	"context"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/pgtest"
)

// TestLockLeaseExpires: a writers' lock whose holder stops renewing it (a
// paused or hung process: here, a lock taken without the renewal) is
// taken by another Storage within the lease.
func TestLockLeaseExpires(t *testing.T) {
	t.Parallel() // waits out leases and timeouts; overlaps the others' waits
	ctx := context.Background()
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	if _, err := Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	const lease = 500 * time.Millisecond
	a, err := Open(ctx, dsn, Options{LockLease: lease})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, dsn, Options{LockLease: lease})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conn, _, err := a.lockConn(ctx) // held, never renewed
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 20*lease)
	defer cancel()
	unlock, err := b.Lock(wctx)
	if err != nil {
		t.Fatalf("the lock of a holder that stopped renewing was not freed within %v: %v", 20*lease, err)
	}
	unlock()
	if waited := time.Since(start); waited < lease/2 {
		t.Fatalf("took a held lock after %v, before its lease of %v ran out", waited, lease)
	}
}
