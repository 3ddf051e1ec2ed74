package keystore

import (
	"context"
	"fmt"

	"github.com/keystack/keystack/policy"
)

// VersionGenerator is implemented by backends that hold one object per key
// version (hsm.Backend): GenerateVersion creates the material of version
// on the token ref names and returns the new version's reference.
type VersionGenerator interface {
	GenerateVersion(ctx context.Context, ref string, version int) (newRef string, err error)
}

// OnDemandRotator is implemented by backends that rotate a key's material
// in place and keep the old material for decryption (awskms.Backend:
// RotateKeyOnDemand).
type OnDemandRotator interface {
	RotateOnDemand(ctx context.Context, ref string) error
}

// RotateKey adds a new version of key name and makes it primary; the
// previous primary becomes decrypt-only, so old messages still decrypt while
// new ones use the new version. reason is recorded in the history.
//
//   - Local AES keys get fresh random material of the same size.
//   - pkcs11 keys whose backend is a VersionGenerator get a new token
//     object, and the new version its reference. If the store write fails
//     afterwards the object is destroyed again (when the backend is a
//     VersionDestroyer), so that a retry can make it.
//   - aws-kms keys whose backend is an OnDemandRotator are rotated in KMS
//     (RotateKeyOnDemand), and the new version shares the ARN: KMS keeps
//     every backing key, so messages of either version decrypt through the
//     same ARN, and version states of a shared ARN are bookkeeping only.
//     Use RotateKeyTo to move to a different KMS key.
//   - Other external keys cannot rotate in place: ErrNotSupported (or
//     ErrBackendUnavailable when no backend is registered for them), and
//     nothing changes. Backends behind a wrapper are found through
//     backendUnwrapper.
//
// Imported RSA keys and keys with explicit ESDK names cannot rotate
// (ErrNotSupported). Backend calls happen under the store's write lock.
func (s *Store) RotateKey(ctx context.Context, name, reason string) (*KeyInfo, error) {
	if err := s.authorize(ctx, policy.ActionRotateKey, name, 0, nil); err != nil {
		return nil, err
	}
	return s.rotateKey(ctx, name, "", reason, s.update)
}

// RotateKeyTo moves external key name to a different key: a new primary
// version with reference newRef (a KMS key ARN or PKCS#11 URI); the old
// primary becomes decrypt-only. Messages under the old key still decrypt
// but should be rewrapped (for KMS, awskms.Keyring.ReEncryptEDK) before the
// old version is retired. Local keys fail with ErrNotSupported.
func (s *Store) RotateKeyTo(ctx context.Context, name, newRef, reason string) (*KeyInfo, error) {
	if err := s.authorize(ctx, policy.ActionRotateKey, name, 0, nil); err != nil {
		return nil, err
	}
	if newRef == "" {
		return nil, fmt.Errorf("%w: RotateKeyTo needs a new key reference", ErrInvalidOptions)
	}
	return s.rotateKey(ctx, name, newRef, reason, s.update)
}

// rotateKey adds the new version through update (newRef "": RotateKey).
func (s *Store) rotateKey(ctx context.Context, name, newRef, reason string, update updater) (*KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	k, err := lookup(f, name)
	if err != nil {
		return nil, err
	}
	if k.Namespace != "" || k.isRSA() {
		return nil, fmt.Errorf("%w: %q is an imported %s key with fixed names", ErrNotSupported, name, k.Kind)
	}
	var alias string // the reference newRef was given as, when the backend resolved it
	if newRef != "" {
		if k.Backend == BackendLocal {
			return nil, fmt.Errorf("%w: local key %q has no external reference to move", ErrNotSupported, name)
		}
		if err := s.checkExternal(k.Backend, newRef); err != nil {
			return nil, err
		}
		if newRef, alias, err = s.resolveRef(ctx, k.Backend, newRef); err != nil {
			return nil, err
		}
	}
	material, err := newLocalMaterial(name, k)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	kek, err := s.kekIf(ctx, material != nil)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	var info *KeyInfo
	var generated string // a token object made for the new version
	err = update(ctx, func(f *storeFile) error {
		k, err := lookup(f, name)
		if err != nil {
			return err
		}
		ref, action, err := s.rotateBackend(ctx, k, newRef)
		if err != nil {
			return err
		}
		if newRef == "" && action == "rotate" && ref != "" {
			generated = ref
		}
		if err := s.addVersion(f, kek, name, k, material, ref, action, reason); err != nil {
			return err
		}
		k.version(k.Primary).Alias = alias
		info = k.info(name)
		return nil
	})
	if err != nil && generated != "" {
		return nil, s.discardGenerated(ctx, k.Backend, generated, err)
	}
	return info, err
}

// newLocalMaterial returns fresh material the size of a local AES key's,
// or nil for external keys.
func newLocalMaterial(name string, k *keyRecord) ([]byte, error) {
	if k.Backend != BackendLocal {
		return nil, nil
	}
	n := map[string]int{aesKind(16): 16, aesKind(24): 24, aesKind(32): 32}[k.Kind]
	if n == 0 {
		return nil, fmt.Errorf("%w: key %q has unknown kind %q", ErrCorruptStore, name, k.Kind)
	}
	return randomKey(n)
}

// rotateBackend makes the backend's part of a rotation and returns the new
// version's reference and the history action naming what was done. An
// external key whose backend can neither make a new version nor rotate its
// material fails (ErrNotSupported) rather than report a rotation that
// changed nothing; RotateKeyTo still moves it to another key.
func (s *Store) rotateBackend(ctx context.Context, k *keyRecord, newRef string) (ref, action string, err error) {
	if newRef != "" {
		return newRef, "rotate-to", nil
	}
	if k.Backend == BackendLocal {
		return "", "rotate", nil
	}
	old := k.version(k.Primary).Ref
	if g, err := capability[VersionGenerator](s, k.Backend, "make a new key version"); err == nil {
		next := k.Versions[len(k.Versions)-1].Version + 1
		if ref, err = g.GenerateVersion(ctx, old, next); err != nil {
			return "", "", fmt.Errorf("keystore: %s backend: %w", k.Backend, err)
		}
		return ref, "rotate", nil
	}
	r, err := capability[OnDemandRotator](s, k.Backend, "rotate key material (move the key with RotateKeyTo)")
	if err != nil {
		return "", "", err
	}
	if err := r.RotateOnDemand(ctx, old); err != nil {
		return "", "", fmt.Errorf("keystore: %s backend: %w", k.Backend, err)
	}
	return old, "rotate-on-demand", nil
}

// addVersion appends version max+1 with ref (sealing material when given),
// makes it primary and moves the old primary to decrypt-only.
func (s *Store) addVersion(f *storeFile, kek []byte, name string, k *keyRecord, material []byte, ref, action, reason string) error {
	now := s.now().UTC()
	old := k.version(k.Primary)
	nv := &versionRecord{VersionInfo: VersionInfo{Version: k.Versions[len(k.Versions)-1].Version + 1,
		State: StateEnabled, Created: now, Ref: ref,
		History: []Event{{Time: now, Action: action, Reason: reason}}}}
	if material != nil {
		sealed, err := sealMaterial(f, kek, name, nv.Version, material)
		if err != nil {
			return err
		}
		nv.Material = sealed
	}
	if old.State == StateEnabled {
		old.State = StateDecryptOnly
		old.History = append(old.History, Event{Time: now, Action: "demote", Reason: reason})
	}
	k.Versions = append(k.Versions, nv)
	k.Primary = nv.Version
	k.LastRotated = now
	return nil
}
