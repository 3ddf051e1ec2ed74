package keystore

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// EncryptKeyring returns a keyring that encrypts under every key spec: the
// first generates the data key, the others wrap it too (a MultiKeyring).
// A spec is a store key name (its primary version is used) or
// "BACKEND:REF" (see Backend). It fails with ErrKeyNotFound,
// ErrKeyDisabled, ErrBackendUnavailable, or ErrBadPassphrase/ErrLocked.
func (s *Store) EncryptKeyring(ctx context.Context, keys ...string) (envelope.Keyring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key to encrypt with", ErrInvalidOptions)
	}
	f, err := s.view(ctx) // read only: the state as parsed once
	if err != nil {
		return nil, err
	}
	krs := make([]envelope.Keyring, 0, len(keys))
	for _, spec := range keys {
		kr, err := s.encryptKeyring(ctx, f, spec)
		if err != nil {
			return nil, err
		}
		krs = append(krs, kr)
	}
	if len(krs) == 1 {
		return krs[0], nil
	}
	return keyring.NewMulti(krs[0], krs[1:]...), nil
}

func (s *Store) encryptKeyring(ctx context.Context, f *storeFile, spec string) (envelope.Keyring, error) {
	if backend, ref, ok := splitSpec(spec); ok {
		kr, err := s.externalKeyring(ctx, backend, ref)
		return s.gated(ctx, kr, err, spec, nil, nil)
	}
	k, err := lookup(f, spec)
	if err != nil {
		return nil, err
	}
	if why := kmsRefusal(f, spec); why != nil {
		return nil, fmt.Errorf("%w: %q is %v", ErrKeyDisabled, spec, why)
	}
	v := k.version(k.Primary)
	if v.State != StateEnabled {
		return nil, fmt.Errorf("%w: primary version %d of %q is %s", ErrKeyDisabled, v.Version, spec, v.State)
	}
	kr, err := s.versionKeyring(ctx, f, spec, k, v, false)
	return s.gated(ctx, kr, err, spec, k, v)
}

// DecryptKeyring returns a keyring that tries every decryptable version
// (enabled or decrypt-only, and not below the key's minimum decryption
// version) of every key spec, and with no spec every key
// in the store. In the every-key form, keys that cannot decrypt (public
// RSA keys, keys of unregistered backends) are left out; named keys that
// cannot decrypt are an error. EDKs name key and version, so decryption
// tries only the matching version.
//
// The keyring reflects the store when it was made, but a message under a
// version made later (a rotation by another Store or process) still
// decrypts: on a miss for a key version or external key it does not
// know, the keyring rereads the store once per change of keystore.json
// and tries again (see reloadingKeyring).
func (s *Store) DecryptKeyring(ctx context.Context, keys ...string) (envelope.Keyring, error) {
	stamp := s.stateRevision(ctx, false)
	kr, f, err := s.decryptKeyring(ctx, keys)
	if err != nil {
		return nil, err
	}
	return s.reloading(ctx, keys, kr, f, stamp), nil
}

// decryptKeyring builds DecryptKeyring's keyring from the store as it is
// now, and returns the store file it read.
func (s *Store) decryptKeyring(ctx context.Context, keys []string) (envelope.Keyring, *storeFile, error) {
	f, err := s.view(ctx) // read only: the state as parsed once
	if err != nil {
		return nil, nil, err
	}
	all := len(keys) == 0
	if all {
		keys = sortedNames(f)
	}
	var krs []envelope.Keyring
	for _, spec := range keys {
		if backend, ref, ok := splitSpec(spec); ok {
			kr, err := s.externalKeyring(ctx, backend, ref)
			kr, err = s.gated(ctx, kr, err, spec, nil, nil)
			if err != nil {
				return nil, nil, err
			}
			krs = append(krs, kr)
			continue
		}
		got, err := s.keyDecryptKeyrings(ctx, f, spec, all)
		if err != nil {
			return nil, nil, err
		}
		krs = append(krs, got...)
	}
	if len(krs) == 0 {
		return nil, nil, fmt.Errorf("%w: the store holds no key that can decrypt", ErrKeyNotFound)
	}
	return keyring.NewMulti(krs[0], krs[1:]...), f, nil
}

// keyDecryptKeyrings returns a keyring per decryptable version of a key.
// With lenient set, a key that cannot decrypt yields none instead of an error.
func (s *Store) keyDecryptKeyrings(ctx context.Context, f *storeFile, name string, lenient bool) ([]envelope.Keyring, error) {
	k, err := lookup(f, name)
	if err != nil {
		return nil, err
	}
	if lenient && k.Backend != BackendLocal && s.backends[k.Backend] == nil {
		return nil, nil
	}
	kmsState := kmsRefusal(f, name)
	switch {
	case kmsState != nil && !lenient:
		return nil, fmt.Errorf("%w: %q is %v", ErrKeyDisabled, name, kmsState)
	case kmsState != nil && k.Backend != BackendLocal:
		return nil, nil // every key: its EDKs name no version to refuse
	}
	var krs, refusals []envelope.Keyring
	seenRef := map[string]bool{}
	for _, v := range k.Versions {
		if r := refusal(name, k, v, kmsState); r != nil {
			refusals = append(refusals, r)
			continue
		}
		if !v.State.canDecrypt() || v.Version < k.MinDecrypt || (k.Backend == BackendLocal && len(v.Material) == 0) || seenRef[v.Ref] {
			continue
		}
		if v.Ref != "" {
			seenRef[v.Ref] = true // versions sharing an external key need one keyring
		}
		kr, err := s.versionKeyring(ctx, f, name, k, v, true)
		kr, err = s.gated(ctx, kr, err, name, k, v)
		if err != nil {
			return nil, err
		}
		krs = append(krs, kr)
	}
	if len(krs) == 0 && !lenient {
		return nil, fmt.Errorf("%w: no version of %q can decrypt", ErrKeyDisabled, name)
	}
	return append(krs, refusals...), nil
}

// versionKeyring builds the keyring of one key version. Local keys get
// raw keyrings named ("keystack", "NAME/vN") unless imported with explicit
// ESDK names; RSA keys encrypt with the clear public key, so only decrypt
// needs the passphrase. A decrypt keyring unseals its version only when a
// message names it (lazyKeyring); the passphrase is still checked now.
func (s *Store) versionKeyring(ctx context.Context, f *storeFile, name string, k *keyRecord, v *versionRecord, decrypt bool) (envelope.Keyring, error) {
	if k.Backend != BackendLocal {
		return s.externalKeyring(ctx, k.Backend, v.Ref)
	}
	ns, keyName := localKeyNames(name, k, v)
	var pub *rsa.PublicKey
	if k.isRSA() {
		var err error
		if pub, err = parseStoredPublic(name, v.Public); err != nil {
			return nil, err
		}
	}
	build := func() (envelope.Keyring, error) { return s.localKeyring(f, name, ns, keyName, k, v, pub, decrypt) }
	if !decrypt || len(v.Material) == 0 {
		return build()
	}
	if err := s.checkLocalNames(ns, keyName, k, pub); err != nil {
		return nil, err
	}
	if err := s.kekReady(f); err != nil {
		return nil, err
	}
	return &lazyKeyring{ns: ns, name: keyName, match: localEDKMatch(ns, keyName), build: build}, nil
}

// localKeyNames returns the ESDK provider ID and key name of a local key
// version's EDKs.
func localKeyNames(name string, k *keyRecord, v *versionRecord) (ns, keyName string) {
	if k.Namespace != "" {
		return k.Namespace, k.KeyName
	}
	return keyring.ProviderLocal, keyring.VersionedKeyName(name, v.Version)
}

// localKeyring builds a local key version's keyring, unsealing its
// material (RSA: only the private key, and only to decrypt).
func (s *Store) localKeyring(f *storeFile, name, ns, keyName string, k *keyRecord, v *versionRecord, pub *rsa.PublicKey, decrypt bool) (envelope.Keyring, error) {
	if !k.isRSA() {
		key, err := s.openMaterial(f, name, v)
		if err != nil {
			return nil, err
		}
		defer clear(key)
		return keyring.NewRawAES(ns, keyName, key)
	}
	var priv *rsa.PrivateKey
	if decrypt && len(v.Material) > 0 {
		var err error
		if priv, err = s.openRSAPrivate(f, name, v); err != nil {
			return nil, err
		}
	}
	return keyring.NewRawRSA(ns, keyName, k.Padding, pub, priv)
}

// checkLocalNames fails now as building the keyring would on its names
// (and an RSA key on its public key), so that a lazy keyring fails late
// only where unsealing does.
func (s *Store) checkLocalNames(ns, keyName string, k *keyRecord, pub *rsa.PublicKey) error {
	if k.isRSA() {
		_, err := keyring.NewRawRSA(ns, keyName, k.Padding, pub, nil)
		return err
	}
	return keyring.CheckRawNames(ns, keyName)
}

// openMaterial returns a version's material in clear; the caller clears it.
func (s *Store) openMaterial(f *storeFile, name string, v *versionRecord) ([]byte, error) {
	if len(v.Material) == 0 {
		return nil, fmt.Errorf("%w: version %d of %q has no material", ErrKeyDisabled, v.Version, name)
	}
	if f.Insecure {
		return append([]byte(nil), v.Material...), nil
	}
	kek, err := s.unlockKEK(f)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	s.unseals.Add(1)
	pt, err := unseal(kek, v.Material, materialAAD(name, v.Version))
	if err != nil {
		return nil, fmt.Errorf("%w (key %q version %d)", err, name, v.Version)
	}
	return pt, nil
}

func (s *Store) openRSAPrivate(f *storeFile, name string, v *versionRecord) (*rsa.PrivateKey, error) {
	der, err := s.openMaterial(f, name, v)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	key, err := x509.ParsePKCS8PrivateKey(der)
	priv, ok := key.(*rsa.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: key %q version %d is not an RSA private key", ErrCorruptStore, name, v.Version)
	}
	return priv, nil
}

func parseStoredPublic(name string, der []byte) (*rsa.PublicKey, error) {
	key, err := x509.ParsePKIXPublicKey(der)
	pub, ok := key.(*rsa.PublicKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: key %q has no valid RSA public key", ErrCorruptStore, name)
	}
	return pub, nil
}
