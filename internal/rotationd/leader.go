package rotationd

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Lease is the leadership of one rotation daemon among several that share
// a store (one beside each key-server replica): only the holder runs
// passes. Hold alone cannot stop a holder that was paused past its lease
// from acting on what it decided before the pause; the store the daemon
// rotates through must therefore fence its writes with the lease (a write
// whose lease was taken over fails with rotation.ErrLeaseLost and changes
// nothing), as internal/pglease.Lease.Storage does.
type Lease interface {
	// Hold takes the lease when it is free or expired, or renews it when
	// this holder has it, and returns the local time until which no other
	// holder can take it. While another holder has it, it fails with an
	// error matching ErrLeaseHeld.
	Hold(ctx context.Context) (until time.Time, err error)
	// Release gives the lease up, so that another daemon need not wait
	// for it to expire.
	Release(ctx context.Context) error
}

// ErrLeaseHeld matches Lease.Hold's error while another daemon leads.
var ErrLeaseHeld = errors.New("rotation: the lease is held by another daemon")

// DefaultLeaseTTL is the lease time a daemon with a Lease assumes when
// Daemon.LeaseTTL is 0: how long a leader that died or was paused keeps
// the others from taking over.
const DefaultLeaseTTL = 10 * time.Second

// leadership keeps a daemon's lease: a follower tries to take it every
// ttl/10, a leader renews it every ttl/3. It signals gained when this
// daemon becomes leader, so a pass runs at once.
type leadership struct {
	lease  Lease
	ttl    time.Duration
	log    *slog.Logger
	gained chan struct{}

	mu      sync.Mutex
	until   time.Time
	leading bool
}

func newLeadership(l Lease, ttl time.Duration, log *slog.Logger) *leadership {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	return &leadership{lease: l, ttl: ttl, log: log, gained: make(chan struct{}, 1)}
}

// valid reports whether this daemon leads with a lease that has not
// expired by now.
func (l *leadership) valid(now time.Time) bool {
	if l == nil {
		return true // no lease: the only daemon
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading && now.Before(l.until)
}

// gainedC is nil (never ready) without a lease.
func (l *leadership) gainedC() <-chan struct{} {
	if l == nil {
		return nil
	}
	return l.gained
}

// run holds the lease until ctx is done, then releases it if held.
func (l *leadership) run(ctx context.Context) {
	for {
		l.hold(ctx)
		wait := l.ttl / 10
		if l.valid(time.Now()) {
			wait = l.ttl / 3
		}
		select {
		case <-ctx.Done():
			l.release(context.WithoutCancel(ctx))
			return
		case <-time.After(wait):
		}
	}
}

// hold takes or renews the lease once and logs a change of leadership.
func (l *leadership) hold(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	until, err := l.lease.Hold(hctx)
	cancel()
	l.mu.Lock()
	was := l.leading
	l.leading, l.until = err == nil, until
	l.mu.Unlock()
	switch {
	case err == nil && !was:
		l.log.LogAttrs(ctx, slog.LevelInfo, "rotation leadership taken", slog.Time("until", until))
		select {
		case l.gained <- struct{}{}:
		default:
		}
	case err != nil && was:
		l.log.LogAttrs(ctx, slog.LevelWarn, "rotation leadership lost", slog.String("error", err.Error()))
	case err != nil && !errors.Is(err, ErrLeaseHeld) && ctx.Err() == nil:
		l.log.LogAttrs(ctx, slog.LevelWarn, "rotation lease unavailable", slog.String("error", err.Error()))
	}
}

func (l *leadership) release(ctx context.Context) {
	l.mu.Lock()
	was := l.leading
	l.leading = false
	l.mu.Unlock()
	if !was {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	if err := l.lease.Release(rctx); err != nil {
		l.log.LogAttrs(ctx, slog.LevelWarn, "rotation lease not released", slog.String("error", err.Error()))
	}
}
