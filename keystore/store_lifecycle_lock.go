package keystore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/keystack/keystack/policy"
)

// errUnlocked is returned by a Locked used after Unlock.
var errUnlocked = errors.New("keystore: store lock already released")

// updater runs fn on a fresh copy of the store file and writes it back:
// Store.update takes the write lock first, Locked.update already holds it.
type updater func(ctx context.Context, fn func(f *storeFile) error) error

// Locked is a Store held under its exclusive write lock (flock(2) on
// keystore.lock), shared with every other process and Store value. While it
// is held no other writer can change keystore.json, so what ListKeys
// returns stays true until Unlock. Rotate through Locked, never through the
// Store, while holding it: the Store's own writes wait for the lock.
type Locked struct {
	s      *Store
	unlock func()
	once   sync.Once
	done   atomic.Bool
}

// Lock takes the store's write lock, waiting until it is free or ctx is done.
func (s *Store) Lock(ctx context.Context) (*Locked, error) {
	unlock, err := s.st.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return &Locked{s: s, unlock: unlock}, nil
}

// ListKeys is Store.ListKeys, read under the lock (from the Storage, even
// in a request that already checked the state: see readScope).
func (l *Locked) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	return l.s.ListKeys(unscoped(ctx))
}

// RotateKey is Store.RotateKey without taking the lock again.
func (l *Locked) RotateKey(ctx context.Context, name, reason string) (*KeyInfo, error) {
	if err := l.s.authorize(ctx, policy.ActionRotateKey, name, 0, nil); err != nil {
		return nil, err
	}
	return l.s.rotateKey(ctx, name, "", reason, l.update)
}

// DisableVersion is Store.DisableVersion without taking the lock again:
// authorized as keystack:DisableKey on the version and audited the same way.
// The rotation engine retires superseded versions through it.
func (l *Locked) DisableVersion(ctx context.Context, name string, v int, reason string) (*KeyInfo, error) {
	return l.s.setStateVia(ctx, l.update, policy.ActionDisableKey, name, v, StateDisabled, "disable", reason)
}

// Unlock releases the lock; later calls do nothing.
func (l *Locked) Unlock() {
	l.once.Do(func() {
		l.done.Store(true)
		l.unlock()
	})
}

func (l *Locked) update(ctx context.Context, fn func(f *storeFile) error) error {
	if l.done.Load() {
		return errUnlocked
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.s.modify(ctx, fn)
}
