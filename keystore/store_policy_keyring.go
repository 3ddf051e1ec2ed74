package keystore

import (
	"context"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// rewrapKey marks a context whose decrypt keyrings authorize
// keystack:ReWrap instead of keystack:Decrypt.
type rewrapKey struct{}

// gated wraps kr (built with error err) for key name: k and v are the store
// key and version, or nil for a "BACKEND:REF" spec.
func (s *Store) gated(ctx context.Context, kr envelope.Keyring, err error, name string, k *keyRecord, v *versionRecord) (envelope.Keyring, error) {
	if err != nil {
		return nil, err
	}
	if kr, err = s.cached(ctx, kr, name, v); err != nil {
		return nil, err
	}
	if s.enf == nil {
		return kr, nil
	}
	key := gatewire.Key{Name: name, Rewrap: ctx.Value(rewrapKey{}) != nil, Provider: gateProvider(name, k), Label: gateLabel(name, 0)}
	if k != nil && k.Backend == BackendLocal {
		ns, keyName := localKeyNames(name, k, v)
		key.Version, key.Provider, key.Match, key.Label = v.Version, ns, localEDKMatch(ns, keyName), gateLabel(name, v.Version)
	}
	return s.enf.Keyring(kr, key), nil
}

// cached returns the store's data-key cache for key name (version v, nil
// for a "BACKEND:REF" spec) in front of kr, when OpenOptions.Cache is set.
// One cache serves the key version for the Store's lifetime; the rewrap
// context gets its own, so ReWrap and Decrypt never share cached keys
// through different gates.
func (s *Store) cached(ctx context.Context, kr envelope.Keyring, name string, v *versionRecord) (envelope.Keyring, error) {
	if s.cacheOpts == nil {
		return kr, nil
	}
	id := name
	if v != nil {
		id = keyring.VersionedKeyName(name, v.Version)
	}
	if ctx.Value(rewrapKey{}) != nil {
		id += "\x00rewrap"
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if c, ok := s.caches[id]; ok {
		return c, nil
	}
	c, err := keyring.NewCaching(kr, *s.cacheOpts)
	if err != nil {
		return nil, err
	}
	if s.caches == nil {
		s.caches = map[string]*keyring.Caching{}
	}
	s.caches[id] = c
	return c, nil
}

// gateProvider is a gated key's backend name: k's, or the spec's.
func gateProvider(name string, k *keyRecord) string {
	if k != nil {
		return k.Backend
	}
	backend, _, _ := splitSpec(name)
	return backend
}

// gateLabel names a gated key in errors: NAME/vN, NAME, or for a
// BACKEND:REF spec the backend alone (a reference may carry secrets).
func gateLabel(name string, version int) string {
	if backend, _, ok := splitSpec(name); ok {
		return backend + " key"
	}
	if version > 0 {
		return keyring.VersionedKeyName(name, version)
	}
	return name
}

// RewrapKeyrings returns the two keyrings of a header-only rewrap: dec
// unwraps under the keys in from (as DecryptKeyring), authorizing
// keystack:ReWrap instead of keystack:Decrypt, and enc wraps the same data
// key under the keys in to (as EncryptKeyring, keystack:Encrypt).
func (s *Store) RewrapKeyrings(ctx context.Context, from, to []string) (dec, enc envelope.Keyring, err error) {
	dec, err = s.DecryptKeyring(context.WithValue(ctx, rewrapKey{}, true), from...)
	if err != nil {
		return nil, nil, err
	}
	enc, err = s.EncryptKeyring(ctx, to...)
	if err != nil {
		return nil, nil, err
	}
	return dec, enc, nil
}
