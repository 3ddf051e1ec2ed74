package keystore

import (
	"context"
	"fmt"
)

// RotateKey adds a new version of key name and makes it primary; the
// previous primary becomes decrypt-only, so old messages still decrypt while
// new ones use the new version. Local AES keys get fresh random material of
// the same size; external keys keep the primary's reference (the backend
// rotates its own material). Imported RSA keys and keys with explicit ESDK
// names cannot rotate (ErrNotSupported). reason is recorded in the history.
func (s *Store) RotateKey(ctx context.Context, name, reason string) (*KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.load()
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
	var material []byte
	if k.Backend == BackendLocal {
		n := map[string]int{aesKind(16): 16, aesKind(24): 24, aesKind(32): 32}[k.Kind]
		if n == 0 {
			return nil, fmt.Errorf("%w: key %q has unknown kind %q", ErrCorruptStore, name, k.Kind)
		}
		if material, err = randomKey(n); err != nil {
			return nil, err
		}
		defer clear(material)
	}
	kek, err := s.kekIf(material != nil)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	var info *KeyInfo
	err = s.update(ctx, func(f *storeFile) error {
		k, err := lookup(f, name)
		if err != nil {
			return err
		}
		if err := s.addVersion(f, kek, name, k, material, reason); err != nil {
			return err
		}
		info = k.info(name)
		return nil
	})
	return info, err
}

// addVersion appends version max+1 (sealing material when given), makes it
// primary and moves the old primary to decrypt-only.
func (s *Store) addVersion(f *storeFile, kek []byte, name string, k *keyRecord, material []byte, reason string) error {
	now := s.now().UTC()
	old := k.version(k.Primary)
	nv := &versionRecord{VersionInfo: VersionInfo{Version: k.Versions[len(k.Versions)-1].Version + 1,
		State: StateEnabled, Created: now, Ref: old.Ref,
		History: []Event{{Time: now, Action: "rotate", Reason: reason}}}}
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
	return nil
}
