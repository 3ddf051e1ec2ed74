package keystore

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// reloadingKeyring is the keyring DecryptKeyring returns. A process may
// keep it (and its Store) for hours, a service or the rotation daemon,
// while other Stores and processes rotate keys; a message under a version
// made since would then find no key. On such a miss, when an EDK names a
// store key version newer than the keyring knows, a store key it does not
// know (in the every-key form), or an external key none of its versions
// refers to, the keyring rereads keystore.json, rebuilds itself from the
// same key specs and tries once more. It rereads at most once per change
// of the file, so messages naming versions that exist nowhere cost a stat,
// never a reload. It is safe for concurrent use.
type reloadingKeyring struct {
	s      *Store
	keys   []string // DecryptKeyring's specs; nil for every key
	rewrap bool     // built by RewrapKeyrings: its gates authorize ReWrap

	mu    sync.Mutex
	kr    envelope.Keyring
	known knownKeys
	stamp Revision // of the state before kr was read from it
}

var _ envelope.Keyring = (*reloadingKeyring)(nil)

func (s *Store) reloading(ctx context.Context, keys []string, kr envelope.Keyring, f *storeFile, stamp Revision) *reloadingKeyring {
	return &reloadingKeyring{s: s, keys: slices.Clone(keys), rewrap: ctx.Value(rewrapKey{}) != nil,
		kr: kr, known: knownOf(f, keys), stamp: stamp}
}

func (r *reloadingKeyring) current() (envelope.Keyring, knownKeys, Revision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kr, r.known, r.stamp
}

// OnEncrypt wraps with the keyring as last (re)built.
func (r *reloadingKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	kr, _, _ := r.current()
	return kr.OnEncrypt(ctx, m)
}

// OnDecrypt tries the current keyring, and after a miss on a key it does
// not know, the keyring of the store as it is now (once per change).
func (r *reloadingKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	kr, known, stamp := r.current()
	err := kr.OnDecrypt(ctx, m, edks)
	if m.DataKey != nil || ctx.Err() != nil || !slices.ContainsFunc(edks, known.unknown) {
		return err
	}
	next, rerr := r.reload(ctx, stamp)
	switch {
	case rerr != nil:
		return withReloadFailure(err, rerr)
	case next == nil:
		return err
	}
	return next.OnDecrypt(ctx, m, edks)
}

// reload rebuilds the keyring if keystore.json changed since the keyring
// seen was read, and returns the keyring to retry with, or nil when the
// store is unchanged.
func (r *reloadingKeyring) reload(ctx context.Context, seen Revision) (envelope.Keyring, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stamp != seen {
		return r.kr, nil // another call reloaded meanwhile
	}
	now := r.s.stateRevision(ctx, true)
	if now == r.stamp {
		return nil, nil
	}
	if r.rewrap {
		ctx = context.WithValue(ctx, rewrapKey{}, true)
	}
	kr, f, err := r.s.decryptKeyring(ctx, r.keys)
	if err != nil {
		return nil, err
	}
	r.kr, r.known, r.stamp = kr, knownOf(f, r.keys), now
	return kr, nil
}

// withReloadFailure adds a failed reload to the attempts of a miss.
func withReloadFailure(miss, reloadErr error) error {
	var nerr *envelope.NoDecryptKeyError
	if errors.As(miss, &nerr) {
		nerr.Attempts = append(nerr.Attempts, envelope.KeyAttempt{ProviderID: keyring.ProviderLocal, KeyName: "(reloading the keystore)", Err: reloadErr})
		return miss
	}
	return errors.Join(miss, reloadErr)
}

// knownKeys is what a decrypt keyring was built from: the highest version
// of each store key it covers, and the EDK key names (KMS ARNs, PKCS#11
// object labels) of their external versions.
type knownKeys struct {
	all      bool
	versions map[string]int
	external map[string]bool
}

func knownOf(f *storeFile, keys []string) knownKeys {
	k := knownKeys{all: len(keys) == 0, versions: map[string]int{}, external: map[string]bool{}}
	if k.all {
		keys = sortedNames(f)
	}
	for _, name := range keys {
		rec, ok := f.Keys[name]
		if !ok {
			continue // a "BACKEND:REF" spec: it has no versions
		}
		for _, v := range rec.Versions {
			k.versions[name] = max(k.versions[name], v.Version)
			if v.Ref != "" {
				k.external[refKeyName(rec.Backend, v.Ref)] = true
			}
		}
	}
	return k
}

// unknown reports whether e may be under a key version made after the
// keyring: a newer version of a key it covers (or, in the every-key form,
// of any key), or an external key none of its versions names.
func (k knownKeys) unknown(e envelope.EncryptedDataKey) bool {
	info := keyring.DescribeEDK(e)
	switch e.ProviderID {
	case keyring.ProviderLocal:
		newest, ok := k.versions[info.Key]
		return info.Version > 0 && (ok || k.all) && info.Version > newest
	case keyring.ProviderPKCS11, keyring.ProviderAWSKMS:
		return !k.external[info.KeyName]
	}
	return false
}

// refKeyName is the key name EDKs of an external reference carry: the
// object label of a PKCS#11 URI, else the reference (a KMS key ARN).
func refKeyName(backend, ref string) string {
	if backend != BackendPKCS11 {
		return ref
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(ref, BackendPKCS11+":"), "?")
	for attr := range strings.SplitSeq(path, ";") {
		if v, ok := strings.CutPrefix(attr, "object="); ok {
			if label, err := url.PathUnescape(v); err == nil {
				return label
			}
			return v
		}
	}
	return ref
}
