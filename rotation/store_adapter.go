package rotation

import (
	"context"
	"errors"
	"time"

	"github.com/keystack/keystack/keystore"
)

// storeAdapter is the rotation engine's keyStore over a local key store:
// its targets are the keys with rotation settings (see Runner), and its
// lock is the store's own write lock.
type storeAdapter struct{ st *keystore.Store }

var (
	_ keyStore       = storeAdapter{}
	_ lockedKeyStore = (*lockedStore)(nil)
)

func (a storeAdapter) RotationTargets(ctx context.Context) ([]target, error) {
	keys, err := a.st.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	return targetsOf(keys), nil
}

// Lock implements keyStore with keystore.Store.Lock.
func (a storeAdapter) Lock(ctx context.Context) (lockedKeyStore, error) {
	l, err := a.st.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return &lockedStore{l: l}, nil
}

type lockedStore struct{ l *keystore.Locked }

func (s *lockedStore) RotationTargets(ctx context.Context) ([]target, error) {
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

func (s *lockedStore) DisableVersion(ctx context.Context, name string, v int, reason string) error {
	_, err := s.l.DisableVersion(ctx, name, v, reason)
	return err
}

func (s *lockedStore) Unlock() { s.l.Unlock() }

// targetsOf keeps the keys the engine rotates or retires versions of, in
// the store's order. A key never rotated counts from its creation, so a new
// key is not rotated at once. A key KMS rotates (KMSAutomatic) is a target
// with no period: the engine only retires its superseded versions.
func targetsOf(keys []keystore.KeyInfo) []target {
	var out []target
	for _, k := range keys {
		rs := k.Rotation
		if rs == nil || (rs.Every <= 0 || rs.KMSAutomatic) && rs.RetireAfter <= 0 {
			continue
		}
		last := k.LastRotated
		if last.IsZero() {
			last = k.Created
		}
		p := Policy{Every: rs.Every, Jitter: rs.Jitter, RetireAfter: rs.RetireAfter}
		if rs.KMSAutomatic {
			p.Every, p.Jitter = 0, 0
		}
		out = append(out, target{Name: k.Name, Policy: p, Hooks: hooksOfSettings(rs), LastRotated: last,
			Version: k.Primary, Superseded: supersededOf(k)})
	}
	return out
}

// supersededOf lists k's decrypt-only versions other than the primary, each
// with the time of its history's last "demote" (a rotation made a new
// primary) or "unset-primary" (another version was made primary) event. A
// version with neither event (none in its history) is left out: with no
// recorded time, it is never due for retirement.
func supersededOf(k keystore.KeyInfo) []superseded {
	var out []superseded
	for _, v := range k.Versions {
		if v.Version == k.Primary || v.State != keystore.StateDecryptOnly {
			continue
		}
		var at time.Time
		for _, e := range v.History {
			if (e.Action == "demote" || e.Action == "unset-primary") && e.Time.After(at) {
				at = e.Time
			}
		}
		if !at.IsZero() {
			out = append(out, superseded{Version: v.Version, At: at})
		}
	}
	return out
}

// hooksOfSettings converts a key's stored rotation settings to its hooks:
// the success and failure hooks run the configured commands (no shell)
// and POST to the webhook.
func hooksOfSettings(rs *keystore.RotationSettings) hooks {
	return hooks{OnSuccess: hooksOf(rs.OnSuccessCommand, rs.WebhookURL), OnFailure: hooksOf(rs.OnFailureCommand, rs.WebhookURL)}
}

func hooksOf(cmd []string, webhook string) hook {
	var hs multiHook
	if len(cmd) > 0 {
		hs = append(hs, &commandHook{Path: cmd[0], Args: cmd[1:]})
	}
	if webhook != "" {
		hs = append(hs, &webhookHook{URL: webhook})
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
type multiHook []hook

func (m multiHook) Run(ctx context.Context, r result) error {
	var errs []error
	for _, h := range m {
		errs = append(errs, h.Run(ctx, r))
	}
	return errors.Join(errs...)
}
