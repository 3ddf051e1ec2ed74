package keystore

import (
	"context"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// rewrapKey marks a context whose decrypt keyrings authorize
// keystack:ReWrap instead of keystack:Decrypt.
type rewrapKey struct{}

// gatedKeyring authorizes every use of one store key (version) before the
// keyring it wraps acts, so that conditions on the encryption context are
// decided per message.
type gatedKeyring struct {
	s       *Store
	inner   envelope.Keyring
	name    string // store key name, or "BACKEND:REF"
	version int    // 0 for external keys, whose EDKs name no version
	decrypt string // keystack:Decrypt or keystack:ReWrap
	// match reports whether inner would try an EDK; nil means any EDK.
	match func(envelope.EncryptedDataKey) bool
	// provider names the key's kind in errors: the ESDK provider ID of a
	// local key, the backend of another.
	provider string
}

var _ envelope.Keyring = (*gatedKeyring)(nil)

// gated wraps kr (built with error err) for key name: k and v are the store
// key and version, or nil for a "BACKEND:REF" spec.
func (s *Store) gated(ctx context.Context, kr envelope.Keyring, err error, name string, k *keyRecord, v *versionRecord) (envelope.Keyring, error) {
	if err != nil {
		return nil, err
	}
	if kr, err = s.cached(ctx, kr, name, v); err != nil {
		return nil, err
	}
	if s.gate == nil {
		return kr, nil
	}
	g := &gatedKeyring{s: s, inner: kr, name: name, decrypt: policy.ActionDecrypt, provider: gateProvider(name, k)}
	if ctx.Value(rewrapKey{}) != nil {
		g.decrypt = policy.ActionReWrap
	}
	if k != nil && k.Backend == BackendLocal {
		g.version = v.Version
		ns, keyName := localKeyNames(name, k, v)
		g.provider = ns
		g.match = localEDKMatch(ns, keyName)
	}
	return g, nil
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

// OnEncrypt authorizes keystack:GenerateDataKey when this key generates the
// data key, and keystack:Encrypt always, for the message's encryption
// context, then wraps.
func (g *gatedKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	var err error
	if m.DataKey == nil {
		err = g.s.authorize2(ctx, policy.ActionGenerateDataKey, policy.ActionEncrypt, g.name, g.version, m.EncryptionContext)
	} else {
		err = g.s.authorize(ctx, policy.ActionEncrypt, g.name, g.version, m.EncryptionContext)
	}
	if err != nil {
		return err
	}
	return g.inner.OnEncrypt(ctx, m)
}

// OnDecrypt authorizes keystack:Decrypt (or ReWrap) for this key version
// before anything is unwrapped, and only when the message holds an EDK of
// this key; the wrapped keyring then sees only those EDKs.
func (g *gatedKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	mine := edks
	if g.match != nil {
		mine = make([]envelope.EncryptedDataKey, 0, 1)
		for _, e := range edks {
			if g.match(e) {
				mine = append(mine, e)
			}
		}
	}
	if len(mine) > 0 {
		if err := g.s.authorize(ctx, g.decrypt, g.name, g.version, m.EncryptionContext); err != nil {
			if !isDenial(err) {
				return err
			}
			// A denial is this key's attempt, named like the key, so that
			// a MultiKeyring reports it among the keys it tried.
			return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{{ProviderID: g.provider, KeyName: g.label(), Err: err}}}
		}
	}
	return g.inner.OnDecrypt(ctx, m, mine)
}

// gateProvider is a gated key's backend name: k's, or the spec's.
func gateProvider(name string, k *keyRecord) string {
	if k != nil {
		return k.Backend
	}
	backend, _, _ := splitSpec(name)
	return backend
}

// label names the gated key in errors: NAME/vN, NAME, or for a
// BACKEND:REF spec the backend alone (a reference may carry secrets).
func (g *gatedKeyring) label() string {
	if backend, _, ok := splitSpec(g.name); ok {
		return backend + " key"
	}
	if g.version > 0 {
		return keyring.VersionedKeyName(g.name, g.version)
	}
	return g.name
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
