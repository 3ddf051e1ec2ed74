package keystore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

func (s serverOps) SealData(ctx context.Context, action, name string, plaintext []byte, aadFor func(version int) []byte, ec map[string]string) (*serverstore.SealedData, error) {
	if action != policy.ActionEncrypt && action != policy.ActionGenerateDataKey && action != policy.ActionReWrap {
		return nil, fmt.Errorf("%w: %s does not seal data", ErrInvalidOptions, action)
	}
	f, k, err := s.dataKey(ctx, name)
	if err != nil {
		return nil, err
	}
	v := k.version(k.Primary)
	if v.State != StateEnabled {
		return nil, fmt.Errorf("%w: primary version %d of %q is %s", ErrKeyDisabled, v.Version, name, v.State)
	}
	if err := s.authorize(ctx, action, name, v.Version, ec); err != nil {
		return nil, err
	}
	c, err := s.dataCipher(ctx, f, name, k, v)
	if err != nil {
		return nil, err
	}
	nonce, ct, err := c.SealRaw(ctx, plaintext, aadFor(v.Version))
	if err != nil {
		return nil, err
	}
	return &serverstore.SealedData{Version: v.Version, Nonce: nonce, Ciphertext: ct}, nil
}

func (s serverOps) OpenData(ctx context.Context, action, name string, d serverstore.SealedData, aad []byte, ec map[string]string) ([]byte, error) {
	if action != policy.ActionDecrypt && action != policy.ActionReWrap {
		return nil, fmt.Errorf("%w: %s does not open data", ErrInvalidOptions, action)
	}
	f, k, err := s.dataKey(ctx, name)
	if err != nil {
		return nil, err
	}
	v := k.version(d.Version)
	if v == nil {
		return nil, keyring.ErrUnwrapFailed // no such version: the ciphertext is not ours
	}
	if !v.State.canDecrypt() || v.Version < k.MinDecrypt {
		return nil, fmt.Errorf("%w: version %d of %q cannot decrypt", ErrKeyDisabled, d.Version, name)
	}
	if err := s.authorize(ctx, action, name, v.Version, ec); err != nil {
		return nil, err
	}
	c, err := s.dataCipher(ctx, f, name, k, v)
	if err != nil {
		return nil, err
	}
	return c.OpenRaw(ctx, d.Nonce, d.Ciphertext, aad)
}

// dataKey reads local AES key name and checks its server state. The
// state it returns is shared read-only (see view).
func (s *Store) dataKey(ctx context.Context, name string) (*storeFile, *keyRecord, error) {
	f, k, err := s.viewKey(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if !k.sealsData() {
		return nil, nil, fmt.Errorf("%w: only keystack's own local AES keys and PKCS#11 AES keys serve KMS operations", ErrNotSupported)
	}
	if f.Server != nil {
		if st := f.Server.Keys[name].state(); st.State != serverstore.Enabled {
			return nil, nil, fmt.Errorf("%w: %q is %s", serverstore.ErrKeyState, name, st.State)
		}
	}
	return f, k, nil
}

// dataCipher seals and opens data whole under one key version: a local
// version's AES-GCM (localCipher), or a PKCS#11 key through its backend.
type dataCipher interface {
	SealRaw(ctx context.Context, plaintext, aad []byte) (iv, ct []byte, err error)
	OpenRaw(ctx context.Context, iv, ct, aad []byte) ([]byte, error)
}

// dataCipher returns version v of key k (named name, in state f).
func (s *Store) dataCipher(ctx context.Context, f *storeFile, name string, k *keyRecord, v *versionRecord) (dataCipher, error) {
	if k.Backend == BackendPKCS11 {
		return s.rawAEAD(ctx, k, v)
	}
	a, err := s.versionAEAD(f, name, v)
	if err != nil {
		return nil, err
	}
	return localCipher{a}, nil
}

// localCipher is a local key version's AES-256-GCM with a random 96-bit
// nonce; any failure to open is keyring.ErrUnwrapFailed.
type localCipher struct{ aead cipher.AEAD }

func (c localCipher) SealRaw(_ context.Context, plaintext, aad []byte) (iv, ct []byte, err error) {
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, c.aead.Seal(nil, nonce, plaintext, aad), nil
}

func (c localCipher) OpenRaw(_ context.Context, iv, ct, aad []byte) ([]byte, error) {
	if len(iv) != c.aead.NonceSize() {
		return nil, keyring.ErrUnwrapFailed
	}
	pt, err := c.aead.Open(nil, iv, ct, aad)
	if err != nil {
		return nil, keyring.ErrUnwrapFailed
	}
	return pt, nil
}

// versionID names one version of one key.
type versionID struct {
	name    string
	version int
}

// versionAEAD returns the AEAD of local version v of key name in state f.
// When f is the shared snapshot (view), the unsealed version is kept with
// it, so the key server unseals each version once per state revision
// rather than once per request; any state change drops it.
func (s *Store) versionAEAD(f *storeFile, name string, v *versionRecord) (cipher.AEAD, error) {
	id := versionID{name, v.Version}
	s.snap.mu.Lock()
	a, ok := s.snap.aeads[id]
	shared := f == s.snap.parsed
	s.snap.mu.Unlock()
	if ok && shared {
		return a, nil
	}
	a, err := s.newVersionAEAD(f, name, v)
	if err != nil || !shared {
		return a, err
	}
	s.snap.mu.Lock()
	if f == s.snap.parsed {
		if s.snap.aeads == nil {
			s.snap.aeads = map[versionID]cipher.AEAD{}
		}
		s.snap.aeads[id] = a
	}
	s.snap.mu.Unlock()
	return a, nil
}

func (s *Store) newVersionAEAD(f *storeFile, name string, v *versionRecord) (cipher.AEAD, error) {
	key, err := s.openMaterial(f, name, v)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", keyring.ErrInvalidKey, err)
	}
	return cipher.NewGCM(b)
}

func (s serverOps) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	if n < 1 || n > 1024 {
		return nil, fmt.Errorf("%w: 1 to 1024 random bytes, not %d", ErrInvalidOptions, n)
	}
	if err := s.authorizeResource(ctx, policy.ActionGenerateRandom, policy.ResourceRandom); err != nil {
		return nil, err
	}
	return randomKey(n)
}
