package keystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keystack/keystack/policy"
)

// ErrIllegalTransition is returned when a lifecycle change would break the
// store's invariants: exactly one primary, which is enabled and never
// disabled, made decrypt-only, scheduled or destroyed; destroyed is final;
// the minimum decryption version is at most the primary.
var ErrIllegalTransition = errors.New("keystore: illegal key version transition")

// DefaultMinDestructionWait is the least waiting period
// ScheduleVersionDestruction accepts unless OpenOptions.MinDestructionWait
// says otherwise: 7 days, AWS KMS ScheduleKeyDeletion's minimum.
const DefaultMinDestructionWait = 7 * 24 * time.Hour

// Key version lifecycle (the Tink keyset manager's Add → SetPrimary →
// Disable → Delete, with KMS-style delayed deletion):
//
//	enabled ⇄ decrypt-only ⇄ disabled     (any of them, if not primary)
//	enabled | decrypt-only | disabled → pending-destruction  (ScheduleVersionDestruction)
//	pending-destruction → disabled                          (CancelVersionDestruction)
//	pending-destruction → destroyed                         (DestroyDueVersions, at DestroyAt)
//
// Only an enabled version can become primary. Every change appends an
// Event with the caller's reason to the version's history; a change to the
// state a version already has does nothing and records nothing.

// EnableVersion makes version v of key name enabled: it decrypts and may
// become primary. It fails with ErrIllegalTransition for a pending or
// destroyed version.
func (s *Store) EnableVersion(ctx context.Context, name string, v int, reason string) (*KeyInfo, error) {
	return s.setState(ctx, policy.ActionEnableKey, name, v, StateEnabled, "enable", reason)
}

// DisableVersion makes version v of key name neither encrypt nor decrypt,
// reversibly. The primary cannot be disabled (ErrIllegalTransition), nor a
// version whose external key another decrypting version shares
// (ErrNotSupported; see checkEnforceable).
func (s *Store) DisableVersion(ctx context.Context, name string, v int, reason string) (*KeyInfo, error) {
	return s.setState(ctx, policy.ActionDisableKey, name, v, StateDisabled, "disable", reason)
}

// SetDecryptOnly makes version v of key name decrypt old messages only.
// The primary cannot be made decrypt-only (ErrIllegalTransition).
func (s *Store) SetDecryptOnly(ctx context.Context, name string, v int, reason string) (*KeyInfo, error) {
	return s.setState(ctx, policy.ActionDisableKey, name, v, StateDecryptOnly, "decrypt-only", reason)
}

func (s *Store) setState(ctx context.Context, action, name string, v int, to VersionState, event, reason string) (*KeyInfo, error) {
	return s.setStateVia(ctx, s.update, action, name, v, to, event, reason)
}

// setStateVia is setState writing through update.
func (s *Store) setStateVia(ctx context.Context, update updater, action, name string, v int, to VersionState, event, reason string) (*KeyInfo, error) {
	return s.changeVersionVia(ctx, update, action, name, v, func(k *keyRecord, vr *versionRecord, now time.Time) error {
		if vr.State == to {
			return nil
		}
		if err := checkMovable(k, vr); err != nil {
			return err
		}
		if !to.canDecrypt() {
			if err := checkEnforceable(k, k.MinDecrypt, []*versionRecord{vr}); err != nil {
				return err
			}
		}
		vr.State = to
		vr.History = append(vr.History, Event{Time: now, Action: event, Reason: reason})
		return nil
	})
}

// checkEnforceable refuses (ErrNotSupported) to stop the versions off
// from decrypting when another version that would still decrypt shares
// one's external key: an AWS KMS key rotated on demand keeps one ARN for
// every version, and KMS decrypts messages of all of them, so the change
// would report a protection it cannot give. minDecrypt is the minimum
// decryption version after the change.
func checkEnforceable(k *keyRecord, minDecrypt int, off []*versionRecord) error {
	for _, v := range off {
		for _, o := range k.Versions {
			if v.Ref == "" || o.Ref != v.Ref || slices.Contains(off, o) || o.Version < minDecrypt || !o.State.canDecrypt() {
				continue
			}
			return fmt.Errorf("%w: version %d shares its %s key with version %d, which still decrypts, so its messages "+
				"would still decrypt; turn off every version of that key together (a minimum decryption version above them, "+
				"after moving the key to a new external key with RotateKeyTo and rewrapping)",
				ErrNotSupported, v.Version, k.Backend, o.Version)
		}
	}
	return nil
}

// checkMovable allows state changes of versions that are not primary and
// neither pending destruction nor destroyed.
func checkMovable(k *keyRecord, vr *versionRecord) error {
	switch {
	case vr.Version == k.Primary:
		return fmt.Errorf("%w: version %d is the primary; make another version primary first", ErrIllegalTransition, vr.Version)
	case vr.State == StateDestroyed:
		return fmt.Errorf("%w: version %d is destroyed", ErrIllegalTransition, vr.Version)
	case vr.State == StatePendingDestruction:
		return fmt.Errorf("%w: version %d is pending destruction; cancel it first", ErrIllegalTransition, vr.Version)
	}
	return nil
}

// SetPrimary makes version v of key name the one that encrypts. v must be
// enabled and at least the minimum decryption version; the old primary
// stays enabled.
func (s *Store) SetPrimary(ctx context.Context, name string, v int, reason string) (*KeyInfo, error) {
	return s.changeVersion(ctx, policy.ActionRotateKey, name, v, func(k *keyRecord, vr *versionRecord, now time.Time) error {
		if vr.Version == k.Primary {
			return nil
		}
		if vr.State != StateEnabled {
			return fmt.Errorf("%w: version %d is %s; only an enabled version can be primary", ErrIllegalTransition, v, vr.State)
		}
		if v < k.MinDecrypt {
			return fmt.Errorf("%w: version %d is below the minimum decryption version %d", ErrIllegalTransition, v, k.MinDecrypt)
		}
		old := k.version(k.Primary)
		old.History = append(old.History, Event{Time: now, Action: "unset-primary", Reason: reason})
		vr.History = append(vr.History, Event{Time: now, Action: "set-primary", Reason: reason})
		k.Primary = v
		return nil
	})
}

// SetMinDecryptionVersion makes versions of key name below v unable to
// decrypt, whatever their state, as Vault Transit's min_decryption_version;
// v = 1 lifts the limit. v must be a version no later than the primary
// (ErrIllegalTransition). A version below v that shares its external
// reference with an allowed version (a KMS key rotated on demand) would
// still decrypt through it, so that change fails with ErrNotSupported.
func (s *Store) SetMinDecryptionVersion(ctx context.Context, name string, v int, reason string) (*KeyInfo, error) {
	return s.changeVersion(ctx, policy.ActionDisableKey, name, v, func(k *keyRecord, vr *versionRecord, now time.Time) error {
		if v > k.Primary {
			return fmt.Errorf("%w: minimum decryption version %d is above the primary %d", ErrIllegalTransition, v, k.Primary)
		}
		if v == max(k.MinDecrypt, 1) {
			return nil
		}
		var off []*versionRecord // versions this change stops from decrypting
		for _, o := range k.Versions {
			if o.Version < v && o.Version >= k.MinDecrypt && o.State.canDecrypt() {
				off = append(off, o)
			}
		}
		if err := checkEnforceable(k, v, off); err != nil {
			return err
		}
		k.MinDecrypt = v
		vr.History = append(vr.History, Event{Time: now, Action: "min-decryption-version", Reason: reason})
		return nil
	})
}

// changeVersion authorizes action on version v of key name, then runs fn on
// it under the write lock with the store clock's time.
func (s *Store) changeVersion(ctx context.Context, action, name string, v int,
	fn func(k *keyRecord, vr *versionRecord, now time.Time) error) (*KeyInfo, error) {
	return s.changeVersionVia(ctx, s.update, action, name, v, fn)
}

// changeVersionVia is changeVersion writing through update.
func (s *Store) changeVersionVia(ctx context.Context, update updater, action, name string, v int,
	fn func(k *keyRecord, vr *versionRecord, now time.Time) error) (*KeyInfo, error) {
	if err := s.authorize(ctx, action, name, v, nil); err != nil {
		return nil, err
	}
	return s.updateKeyVia(ctx, update, name, func(k *keyRecord) error {
		vr := k.version(v)
		if vr == nil {
			return fmt.Errorf("%w: %q has no version %d", ErrKeyNotFound, name, v)
		}
		if err := fn(k, vr, s.now().UTC()); err != nil {
			return fmt.Errorf("%w (key %q)", err, name)
		}
		return nil
	})
}

// updateKey runs fn on key name under the write lock (see update) and
// returns the key as written.
func (s *Store) updateKey(ctx context.Context, name string, fn func(k *keyRecord) error) (*KeyInfo, error) {
	return s.updateKeyVia(ctx, s.update, name, fn)
}

// updateKeyVia is updateKey writing through update.
func (s *Store) updateKeyVia(ctx context.Context, update updater, name string, fn func(k *keyRecord) error) (*KeyInfo, error) {
	var info *KeyInfo
	err := update(ctx, func(f *storeFile) error {
		k, err := lookup(f, name)
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
		info = k.info(name)
		return nil
	})
	return info, err
}
