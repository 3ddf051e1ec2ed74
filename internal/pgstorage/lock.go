package pgstorage

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// writersLock is the advisory lock key of the writers' lock ("keylock").
const writersLock int64 = 0x6b65796c6f636b

// Lock implements keystore.Storage: a transaction-scoped advisory lock on
// a connection of its own, held until unlock, and lost when the holder
// stops renewing it for Options.LockLease (see the package doc). While it
// is held, Revision asks the database.
func (s *Storage) Lock(ctx context.Context) (unlock func(), err error) {
	conn, tx, err := s.lockConn(ctx)
	if err != nil {
		return nil, err
	}
	s.trips.Add(3) // BEGIN, SET LOCAL, the lock; COMMIT below
	s.locks.Add(1)
	stop, done := make(chan struct{}), make(chan struct{})
	go s.renewLock(tx, stop, done)
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
			cctx, cancel := context.WithTimeout(context.Background(), s.opts.QueryTimeout)
			defer cancel()
			s.trips.Add(1)
			if tx.Commit(cctx) != nil {
				conn.Hijack().Close(cctx) // the session may be gone; never reuse it
			} else {
				conn.Release()
			}
			s.locks.Add(-1)
		})
	}, nil
}

// lockConn takes the advisory lock in a new transaction.
func (s *Storage) lockConn(ctx context.Context) (*pgxpool.Conn, pgx.Tx, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, lockErr(ctx, err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, fmt.Sprintf("SET LOCAL idle_in_transaction_session_timeout = %d", s.opts.LockLease.Milliseconds()))
	}
	if err == nil {
		_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writersLock)
	}
	if err != nil {
		// The server may still be waiting for the lock: cancel that wait
		// before dropping the connection, or it would take the lock for
		// a client that is gone.
		cctx, cancel := context.WithTimeout(context.Background(), s.opts.QueryTimeout)
		defer cancel()
		pc := conn.Hijack()
		_ = pc.PgConn().CancelRequest(cctx)
		pc.Close(cctx)
		return nil, nil, lockErr(ctx, err)
	}
	return conn, tx, nil
}

func lockErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("pgstorage: waiting for the writers' lock: %w", ctx.Err())
	}
	return unavailable("writers' lock", err)
}

// renewLock keeps the lock's session from going idle while it is held; a
// holder that stops (paused, dead) stops renewing, and the database ends
// its session after LockLease.
func (s *Storage) renewLock(tx pgx.Tx, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.opts.LockLease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.QueryTimeout)
			_, err := tx.Exec(ctx, "SELECT 1")
			cancel()
			if err != nil {
				return
			}
		}
	}
}
