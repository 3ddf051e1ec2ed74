package keystore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/keystack/keystack/audit"
)

// actionChangePassphrase is the audit action of a passphrase change.
const actionChangePassphrase = "keystack:ChangePassphrase"

// ChangePassphrase reseals the store under newPassphrase: a new KDF salt
// (with this build's costs for the store's KDF), a new verifier, and every
// local key version's material sealed again under the new key-encryption
// key. It needs the current passphrase, from OpenOptions.Passphrase.
//
// Crash safety: every sealed value and the verifier live in keystore.json,
// which is rewritten once, under the write lock, by an atomic replace
// (fsynced file, rename, fsynced directory). A crash at any point leaves
// either the old file (old passphrase, old seals) or the new one, never a
// mix. The change is recorded in the audit log before the file is
// replaced; without the record nothing changes.
func (s *Store) ChangePassphrase(ctx context.Context, newPassphrase []byte) error {
	if len(newPassphrase) == 0 {
		return fmt.Errorf("%w: empty new passphrase", ErrBadPassphrase)
	}
	return s.rekey(ctx, func(f *storeFile) ([]byte, error) { return s.reseal(ctx, f, newPassphrase) })
}

// rekey rewrites keystore.json under reseal, which reseals f in memory
// under a new key-encryption key and returns it, in one update; only when
// that is written does the new key replace the old one in memory (both
// cleared when done with).
func (s *Store) rekey(ctx context.Context, reseal func(f *storeFile) ([]byte, error)) error {
	var newKEK []byte
	err := s.update(ctx, func(f *storeFile) error {
		var err error
		newKEK, err = reseal(f)
		return err
	})
	if err != nil {
		clear(newKEK)
		return err
	}
	s.mu.Lock()
	clear(s.kek)
	s.kek = newKEK
	s.mu.Unlock()
	return nil
}

// reseal rewrites f in memory for the new passphrase and records the
// change; it returns the new key-encryption key.
func (s *Store) reseal(ctx context.Context, f *storeFile, newPassphrase []byte) ([]byte, error) {
	if f.Insecure {
		return nil, fmt.Errorf("%w: the store is unsealed (created with no passphrase)", ErrInvalidOptions)
	}
	if f.Seal != nil {
		return nil, fmt.Errorf("%w: the store is auto-unsealed by a %s key and has no passphrase (seal set passphrase gives it one)", ErrInvalidOptions, f.Seal.Backend)
	}
	oldKEK, err := s.unlockKEK(f)
	if err != nil {
		return nil, err
	}
	defer clear(oldKEK)
	p, err := newKDFParams(f.KDF.Name)
	if err != nil {
		return nil, err
	}
	newKEK, err := p.deriveKEK(newPassphrase)
	if err != nil {
		return nil, err
	}
	err = resealAll(f, oldKEK, newKEK)
	if err == nil {
		f.KDF = &p
		err = s.recordPassphraseChange(ctx)
	}
	if err != nil {
		clear(newKEK)
		return nil, err
	}
	return newKEK, nil
}

// resealMaterial opens every sealed key version under oldKEK and seals it
// again under newKEK, bound to the same name and version.
func resealMaterial(f *storeFile, oldKEK, newKEK []byte) error {
	for _, name := range sortedNames(f) {
		k := f.Keys[name]
		if k.Backend != BackendLocal {
			continue
		}
		for _, v := range k.Versions {
			if len(v.Material) == 0 {
				continue
			}
			aad := materialAAD(name, v.Version)
			pt, err := unseal(oldKEK, v.Material, aad)
			if err != nil {
				return fmt.Errorf("key %s version %d: %w", name, v.Version, err)
			}
			sealed, err := seal(newKEK, pt, aad)
			clear(pt)
			if err != nil {
				return err
			}
			v.Material = sealed
		}
	}
	return nil
}

// resealCredentials does for the key server's access key secrets what
// resealMaterial does for key versions: without it a passphrase change
// left every issued credential unopenable (refused as internal errors).
func resealCredentials(f *storeFile, oldKEK, newKEK []byte) error {
	if f.Server == nil {
		return nil
	}
	for _, akid := range slices.Sorted(maps.Keys(f.Server.Credentials)) {
		c := f.Server.Credentials[akid]
		pt, err := unseal(oldKEK, c.Secret, credentialAAD(akid))
		if err != nil {
			return fmt.Errorf("credential %s: %w", akid, err)
		}
		sealed, err := seal(newKEK, pt, credentialAAD(akid))
		clear(pt)
		if err != nil {
			return err
		}
		c.Secret = sealed
	}
	return nil
}

// recordPassphraseChange appends the change to the audit log, failing
// closed when it cannot.
func (s *Store) recordPassphraseChange(ctx context.Context) error {
	r := audit.Record{Principal: s.principal, Action: actionChangePassphrase, Resource: resourceKeystore, Outcome: "ok"}
	if err := s.enf.RecordOperation(ctx, r); err != nil {
		return fmt.Errorf("keystore: passphrase change not recorded in the audit log, so not made: %w", err)
	}
	return nil
}

// tryPassphrase asks the passphrase source once and returns the
// key-encryption key it derives, if the verifier accepts it.
func (s *Store) tryPassphrase(f *storeFile) ([]byte, error) {
	pass, err := s.passphrase()
	if err != nil {
		return nil, fmt.Errorf("keystore: reading passphrase: %w", err)
	}
	defer clear(pass)
	kek, err := s.derive(f, pass)
	if err != nil {
		return nil, s.auditFailedUnlock(err)
	}
	return kek, nil
}

// derive returns the key-encryption key pass gives, if the verifier
// accepts it.
func (s *Store) derive(f *storeFile, pass []byte) ([]byte, error) {
	kek, err := f.KDF.deriveKEK(pass)
	if err != nil {
		return nil, err
	}
	if err := checkVerifier(kek, f.Verifier); err != nil {
		clear(kek)
		return nil, err
	}
	return kek, nil
}

// reunlockPassphrase unlocks a store another process resealed under a
// passphrase after this one unlocked it, when OpenOptions.RereadPassphrase
// allows: it reads the passphrase again, and derives a key only from one
// not already found wrong for this verifier, so a server whose file still
// holds the old passphrase pays no KDF (and audits no failure) per request.
// The caller holds s.mu and replaced nothing yet.
func (s *Store) reunlockPassphrase(f *storeFile) ([]byte, error) {
	if !s.reread || s.passphrase == nil {
		return nil, errResealed
	}
	pass, err := s.passphrase()
	if err != nil {
		return nil, fmt.Errorf("%w (reading the passphrase again: %v)", errResealed, err)
	}
	defer clear(pass)
	h := sha256.New()
	h.Write(f.Verifier)
	h.Write(pass)
	tried := h.Sum(nil)
	if subtle.ConstantTimeCompare(tried, s.stale) == 1 {
		return nil, errResealed
	}
	kek, err := s.derive(f, pass)
	if err != nil {
		s.stale = tried
		return nil, fmt.Errorf("%w (%v)", errResealed, s.auditFailedUnlock(err))
	}
	clear(s.kek)
	s.kek = kek
	return bytes.Clone(kek), nil
}

// unlockWithTries asks up to OpenOptions.PassphraseTries times while the
// passphrase given is wrong; each wrong one is audited.
func (s *Store) unlockWithTries(f *storeFile) ([]byte, error) {
	for try := 1; ; try++ {
		kek, err := s.tryPassphrase(f)
		if err == nil || !errors.Is(err, ErrBadPassphrase) || try >= max(s.tries, 1) {
			return kek, err
		}
	}
}

// Unlock checks the passphrase now, asking for it as OpenOptions says,
// instead of at the first use of sealed material. Unsealed stores need none.
func (s *Store) Unlock() error {
	f, err := s.view(context.Background())
	if err != nil {
		return err
	}
	kek, err := s.unlockKEK(f)
	clear(kek)
	return err
}

// resealAll moves everything f keeps sealed (key material, credential
// secrets) from oldKEK to newKEK and replaces its verifier with newKEK's.
func resealAll(f *storeFile, oldKEK, newKEK []byte) error {
	if err := resealMaterial(f, oldKEK, newKEK); err != nil {
		return err
	}
	if err := resealCredentials(f, oldKEK, newKEK); err != nil {
		return err
	}
	var err error
	f.Verifier, err = newVerifier(newKEK)
	return err
}
