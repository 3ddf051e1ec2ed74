package pgstorage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keystack/keystack/keystore"
)

// Lease is a held leadership lease: Name, held by Holder, with the fencing
// Epoch the database gave it. Epochs of a name only grow; each new holder
// (and each new acquisition) gets a higher one.
type Lease struct {
	Name   string
	Holder string
	Epoch  int64
	// Until is the local time up to which no one else can have taken the
	// lease: the request's start plus its time to live. Past it, a holder
	// must renew before acting, and its writes go through Fenced anyway.
	Until time.Time
}

// Errors of leases.
var (
	// ErrLeaseHeld is returned by AcquireLease while another holder's
	// lease has not expired.
	ErrLeaseHeld = errors.New("pgstorage: the lease is held by another holder")
	// ErrLeaseLost is returned by RenewLease, and by writes through
	// Fenced, when the lease has a newer epoch than the one held: another
	// holder took it over (this holder was paused or cut off past the
	// lease), so this one must stop acting as leader.
	ErrLeaseLost = errors.New("pgstorage: the lease was taken over (fenced: a newer epoch exists)")
)

// AcquireLease takes lease name for holder (a name unique to this process,
// such as host:pid:random) for ttl, if it is free, expired or already
// holder's; it fails with ErrLeaseHeld otherwise. Every acquisition gets
// a new epoch, higher than every earlier one of name.
func (s *Storage) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	start := time.Now()
	var epoch int64
	err := s.pool.QueryRow(ctx, `INSERT INTO keystack_leases AS l (name, holder, epoch, expires_at)
		VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
		WHERE l.expires_at < now() OR l.holder = EXCLUDED.holder
		RETURNING epoch`, name, holder, ttl.Milliseconds()).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, ErrLeaseHeld
	}
	if err != nil {
		return Lease{}, unavailable("acquire lease "+name, err)
	}
	return Lease{Name: name, Holder: holder, Epoch: epoch, Until: start.Add(ttl)}, nil
}

// RenewLease extends l by ttl from now if its epoch is still the current
// one (even past its expiry, when no one took it over meanwhile), and
// fails with ErrLeaseLost otherwise.
func (s *Storage) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	start := time.Now()
	tag, err := s.pool.Exec(ctx, `UPDATE keystack_leases SET expires_at = now() + $4 * interval '1 millisecond'
		WHERE name = $1 AND holder = $2 AND epoch = $3`, l.Name, l.Holder, l.Epoch, ttl.Milliseconds())
	if err != nil {
		return l, unavailable("renew lease "+l.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return l, ErrLeaseLost
	}
	l.Until = start.Add(ttl)
	return l, nil
}

// ReleaseLease ends l now, if it is still current, so that another holder
// need not wait for it to expire. Releasing a lost lease is not an error.
func (s *Storage) ReleaseLease(ctx context.Context, l Lease) error {
	_, err := s.pool.Exec(ctx, `UPDATE keystack_leases SET expires_at = now() - interval '1 millisecond'
		WHERE name = $1 AND holder = $2 AND epoch = $3`, l.Name, l.Holder, l.Epoch)
	if err != nil {
		return unavailable("release lease "+l.Name, err)
	}
	return nil
}

// Fenced returns a keystore.Storage that is s except that Write commits
// only while l's epoch is the lease's current one, checked in the write's
// transaction with the lease row share-locked, so no takeover can commit
// between the check and the write. A write after a takeover fails with
// ErrLeaseLost and changes nothing. Open a Store on it for the leader's
// writes (the rotation daemon's).
func (s *Storage) Fenced(l Lease) keystore.Storage { return &fenced{Storage: s, lease: l} }

type fenced struct {
	*Storage
	lease Lease
}

func (f *fenced) Write(ctx context.Context, doc keystore.Document, data []byte, prev keystore.Revision) (keystore.Revision, error) {
	var rev keystore.Revision
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		var holder string
		var epoch int64
		// The row lock blocks a takeover until this transaction ends: a
		// holder paused (SIGSTOP) inside it must not hold it longer than
		// the writers' lock, so the session ends after LockLease idle.
		err := tx.QueryRow(ctx, `SELECT holder, epoch, set_config('idle_in_transaction_session_timeout', $2, true)
			FROM keystack_leases WHERE name = $1 FOR SHARE`, f.lease.Name, strconv.FormatInt(f.opts.LockLease.Milliseconds(), 10)).Scan(&holder, &epoch, nil)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && (epoch != f.lease.Epoch || holder != f.lease.Holder) {
			return ErrLeaseLost
		}
		if err != nil {
			return unavailable("check lease "+f.lease.Name, err)
		}
		rev, err = f.write(ctx, tx, doc, data, prev)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrLeaseLost) || errors.Is(err, keystore.ErrConflict) || errors.Is(err, keystore.ErrUnavailable) {
			return keystore.NoRevision, err
		}
		return keystore.NoRevision, unavailable("fenced write", err)
	}
	f.w.saw(doc, revNum(rev))
	return rev, nil
}

func revNum(rev keystore.Revision) int64 {
	var n int64
	fmt.Sscan(string(rev), &n)
	return n
}
