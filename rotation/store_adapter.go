package rotation

import (
	"context"
	"errors"

	"github.com/keystack/keystack/keystore"
)

// StoreAdapter is the rotation engine's KeyStore over a local key store:
// its targets are the keys with rotation settings (keystore.KeyInfo.Rotation
// with Every > 0 and not KMSAutomatic, which KMS rotates by itself), and
// its lock is the store's own write lock, so rotations by the engine, the
// CLI and other processes never interleave.
type StoreAdapter struct {
	Store *keystore.Store
}

var (
	_ KeyStore    = (*StoreAdapter)(nil)
	_ LockedStore = (*lockedStore)(nil)
)

// NewStoreAdapter returns the adapter for st.
func NewStoreAdapter(st *keystore.Store) *StoreAdapter { return &StoreAdapter{Store: st} }

// RotationTargets implements KeyStore.
func (a *StoreAdapter) RotationTargets(ctx context.Context) ([]Target, error) {
	keys, err := a.Store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	return targetsOf(keys), nil
}

// Lock implements KeyStore with keystore.Store.Lock.
func (a *StoreAdapter) Lock(ctx context.Context) (LockedStore, error) {
	l, err := a.Store.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return &lockedStore{l: l}, nil
}

type lockedStore struct{ l *keystore.Locked }

func (s *lockedStore) RotationTargets(ctx context.Context) ([]Target, error) {
	keys, err := s.l.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	return targetsOf(keys), nil
}

func (s *lockedStore) RotateKey(ctx context.Context, name, reason string) (int, error) {
	ki, err := s.l.RotateKey(ctx, name, reason)
	if err != nil {
		return 0, err
	}
	return ki.Primary, nil
}

func (s *lockedStore) Unlock() { s.l.Unlock() }

// targetsOf keeps the keys the engine rotates, in the store's order. A key
// never rotated counts from its creation, so a new key is not rotated at
// once.
func targetsOf(keys []keystore.KeyInfo) []Target {
	var out []Target
	for _, k := range keys {
		rs := k.Rotation
		if rs == nil || rs.Every <= 0 || rs.KMSAutomatic {
			continue
		}
		last := k.LastRotated
		if last.IsZero() {
			last = k.Created
		}
		out = append(out, Target{Name: k.Name, Policy: policyOf(rs), LastRotated: last, Version: k.Primary})
	}
	return out
}

// policyOf converts a key's stored rotation settings to a Policy: the
// success and failure hooks run the configured commands (no shell) and
// POST to the webhook.
func policyOf(rs *keystore.RotationSettings) Policy {
	p := Policy{Every: rs.Every, Jitter: rs.Jitter, RetireAfter: rs.RetireAfter}
	p.OnSuccess = hooksOf(rs.OnSuccessCommand, rs.WebhookURL)
	p.OnFailure = hooksOf(rs.OnFailureCommand, rs.WebhookURL)
	return p
}

func hooksOf(cmd []string, webhook string) Hook {
	var hs multiHook
	if len(cmd) > 0 {
		hs = append(hs, &CommandHook{Path: cmd[0], Args: cmd[1:]})
	}
	if webhook != "" {
		hs = append(hs, &WebhookHook{URL: webhook})
	}
	switch len(hs) {
	case 0:
		return nil
	case 1:
		return hs[0]
	}
	return hs
}

// multiHook runs every hook, even after one fails, and joins the errors.
type multiHook []Hook

func (m multiHook) Run(ctx context.Context, r Result) error {
	var errs []error
	for _, h := range m {
		errs = append(errs, h.Run(ctx, r))
	}
	return errors.Join(errs...)
}
