// Package pglease elects one rotation daemon among the key-server replicas
// of one PostgreSQL store: a [rotationd.Lease] on a pgstorage lease row with
// a fencing epoch, and the Storage the leader rotates through, whose writes
// commit only while this daemon's epoch is the current one.
//
// A daemon that was paused (SIGSTOP) or cut off past its lease wakes up to
// find another holder with a higher epoch: its renewal fails, and any
// write it was about to make when it stopped fails in the database with
// [rotation.ErrLeaseLost] and changes nothing, so it rotates nothing
// twice.
package pglease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/internal/rotationd"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/rotation"
)

// leaseName is the lease row the rotation daemons share.
const leaseName = "rotation"

// Lease is one daemon's handle on the rotation lease. It is safe for
// concurrent use.
type Lease struct {
	st     *pgstorage.Storage
	holder string
	ttl    time.Duration

	mu  sync.Mutex
	cur *pgstorage.Lease // held now; nil when not
}

var _ rotationd.Lease = (*Lease)(nil)

// New returns the handle of holder (a name unique to this process, such
// as host:pid:random) on the rotation lease of st, with time to live ttl
// (0 means rotationd.DefaultLeaseTTL).
func New(st *pgstorage.Storage, holder string, ttl time.Duration) *Lease {
	if ttl <= 0 {
		ttl = rotationd.DefaultLeaseTTL
	}
	return &Lease{st: st, holder: holder, ttl: ttl}
}

// Hold implements rotationd.Lease: it renews the lease this handle holds, or
// takes it (with a new, higher epoch) when it is free or expired.
func (l *Lease) Hold(ctx context.Context) (time.Time, error) {
	if cur := l.held(); cur != nil {
		nl, err := l.st.RenewLease(ctx, *cur, l.ttl)
		if err == nil {
			l.set(&nl)
			return nl.Until, nil
		}
		if !errors.Is(err, pgstorage.ErrLeaseLost) {
			return time.Time{}, err // the database is unreachable: writes stay fenced by cur
		}
		l.set(nil)
	}
	nl, err := l.st.AcquireLease(ctx, leaseName, l.holder, l.ttl)
	if errors.Is(err, pgstorage.ErrLeaseHeld) {
		return time.Time{}, fmt.Errorf("%w: %w", rotationd.ErrLeaseHeld, err)
	}
	if err != nil {
		return time.Time{}, err
	}
	l.set(&nl)
	return nl.Until, nil
}

// Release implements rotationd.Lease.
func (l *Lease) Release(ctx context.Context) error {
	cur := l.held()
	l.set(nil)
	if cur == nil {
		return nil
	}
	return l.st.ReleaseLease(ctx, *cur)
}

// Epoch returns the fencing epoch this handle holds, 0 when none.
func (l *Lease) Epoch() int64 {
	if cur := l.held(); cur != nil {
		return cur.Epoch
	}
	return 0
}

func (l *Lease) held() *pgstorage.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

func (l *Lease) set(nl *pgstorage.Lease) {
	l.mu.Lock()
	l.cur = nl
	l.mu.Unlock()
}

// Storage returns the store's Storage with every Write fenced by the lease
// this handle holds at the time of the write: without one, or after a
// takeover, the write fails with an error matching rotation.ErrLeaseLost
// and changes nothing. Reads, revisions and the writers' lock are the
// Storage's own. Open the daemon's Store on it.
func (l *Lease) Storage() keystore.Storage { return fenced{Storage: l.st, l: l} }

type fenced struct {
	*pgstorage.Storage
	l *Lease
}

func (f fenced) Write(ctx context.Context, doc keystore.Document, data []byte, prev keystore.Revision) (keystore.Revision, error) {
	cur := f.l.held()
	if cur == nil {
		return keystore.NoRevision, fmt.Errorf("%w: this daemon holds no lease", rotation.ErrLeaseLost)
	}
	rev, err := f.Storage.Fenced(*cur).Write(ctx, doc, data, prev)
	if errors.Is(err, pgstorage.ErrLeaseLost) {
		return rev, fmt.Errorf("%w: %w", rotation.ErrLeaseLost, err)
	}
	return rev, err
}
