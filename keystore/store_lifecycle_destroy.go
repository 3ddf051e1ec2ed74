package keystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keystack/keystack/policy"
)

// VersionDestroyer is implemented by backends that hold one object per key
// version (hsm.Backend): DestroyVersion destroys the object ref names and
// succeeds when it is already gone.
type VersionDestroyer interface {
	DestroyVersion(ctx context.Context, ref string) error
}

// DestroyedVersion names a version DestroyDueVersions erased.
type DestroyedVersion struct {
	Key     string    `json:"key"`
	Version int       `json:"version"`
	At      time.Time `json:"at"`
}

// ScheduleVersionDestruction moves version v of key name to
// pending-destruction, due for DestroyDueVersions after waiting, as KMS
// ScheduleKeyDeletion: it neither encrypts nor decrypts meanwhile, and
// CancelVersionDestruction takes it back. waiting must be at least the
// store's minimum (DefaultMinDestructionWait unless OpenOptions says
// otherwise; ErrInvalidOptions). The primary cannot be scheduled
// (ErrIllegalTransition).
func (s *Store) ScheduleVersionDestruction(ctx context.Context, name string, v int, waiting time.Duration, reason string) (*KeyInfo, error) {
	if least := s.minDestructionWait(); waiting < least {
		return nil, fmt.Errorf("%w: destruction waiting period %v is below the minimum %v", ErrInvalidOptions, waiting, least)
	}
	return s.changeVersion(ctx, policy.ActionScheduleKeyDeletion, name, v, func(k *keyRecord, vr *versionRecord, now time.Time) error {
		if err := checkMovable(k, vr); err != nil {
			return err
		}
		vr.State, vr.DestroyAt = StatePendingDestruction, now.Add(waiting)
		vr.History = append(vr.History, Event{Time: now, Action: "schedule-destruction",
			Reason: joinReason(reason, "destroy at "+vr.DestroyAt.Format(time.RFC3339))})
		return nil
	})
}

// CancelVersionDestruction takes a pending-destruction version back to
// disabled (as KMS CancelKeyDeletion); enable it to use it again. Other
// states fail with ErrIllegalTransition.
func (s *Store) CancelVersionDestruction(ctx context.Context, name string, v int, reason string) (*KeyInfo, error) {
	return s.changeVersion(ctx, policy.ActionScheduleKeyDeletion, name, v, func(k *keyRecord, vr *versionRecord, now time.Time) error {
		if vr.State != StatePendingDestruction {
			return fmt.Errorf("%w: version %d is %s, not pending destruction", ErrIllegalTransition, v, vr.State)
		}
		vr.State, vr.DestroyAt = StateDisabled, time.Time{}
		vr.History = append(vr.History, Event{Time: now, Action: "cancel-destruction", Reason: reason})
		return nil
	})
}

// DestroyDueVersions destroys every pending-destruction version whose
// DestroyAt has passed by the store clock: local material is erased from
// keystore.json; a pkcs11 version's token object is destroyed through a
// VersionDestroyer backend unless another live version shares it; KMS keys
// are never scheduled for deletion (an ARN may be shared), only marked.
// Versions the principal may not destroy, or whose backend fails, stay
// pending and are reported in the error; the others are destroyed anyway.
func (s *Store) DestroyDueVersions(ctx context.Context) ([]DestroyedVersion, error) {
	var done []DestroyedVersion
	var errs []error
	err := s.update(ctx, func(f *storeFile) error {
		done, errs = done[:0], errs[:0]
		now := s.now().UTC()
		for _, name := range sortedNames(f) {
			k := f.Keys[name]
			for _, vr := range k.Versions {
				if vr.State != StatePendingDestruction || now.Before(vr.DestroyAt) {
					continue
				}
				if err := s.destroyVersion(ctx, name, k, vr, now); err != nil {
					errs = append(errs, fmt.Errorf("key %q version %d: %w", name, vr.Version, err))
					continue
				}
				done = append(done, DestroyedVersion{Key: name, Version: vr.Version, At: now})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return done, errors.Join(errs...)
}

func (s *Store) destroyVersion(ctx context.Context, name string, k *keyRecord, vr *versionRecord, now time.Time) error {
	if err := s.authorize(ctx, policy.ActionScheduleKeyDeletion, name, vr.Version, nil); err != nil {
		return err
	}
	if k.Backend != BackendLocal && k.Backend != BackendAWSKMS && vr.Ref != "" && !refShared(k, vr) {
		d, err := capability[VersionDestroyer](s, k.Backend, "destroy key objects")
		if err != nil {
			return err
		}
		if err := d.DestroyVersion(ctx, vr.Ref); err != nil {
			return fmt.Errorf("keystore: %s backend: %w", k.Backend, err)
		}
	}
	clear(vr.Material)
	vr.Material, vr.Public = nil, nil
	vr.State, vr.DestroyAt = StateDestroyed, time.Time{}
	vr.History = append(vr.History, Event{Time: now, Action: "destroy"})
	return nil
}

// refShared reports whether another version that is not destroyed uses
// vr's external reference.
func refShared(k *keyRecord, vr *versionRecord) bool {
	for _, o := range k.Versions {
		if o != vr && o.Ref == vr.Ref && o.State != StateDestroyed {
			return true
		}
	}
	return false
}

func (s *Store) minDestructionWait() time.Duration {
	if s.minWait > 0 {
		return s.minWait
	}
	return DefaultMinDestructionWait
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
