package keystore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// SealedData is data sealed by SealData: AES-256-GCM under one version of
// a local key, with a random 96-bit nonce; Ciphertext ends with the
// 16-byte tag.
type SealedData struct {
	Version    int
	Nonce      []byte
	Ciphertext []byte
}

// SealData encrypts plaintext under the primary version of AES key name
// (local, or a PKCS#11 token key through the registered backend, with an
// IV from crypto/rand) with aad as additional data, for the key server's Encrypt and data
// keys. action (keystack:Encrypt, keystack:GenerateDataKey or
// keystack:ReWrap) is decided on that version with ec as the request's
// encryption context. The key must be enabled in the server state
// (ErrKeyState) and its primary version enabled (ErrKeyDisabled).
func (s *Store) SealData(ctx context.Context, action, name string, plaintext, aad []byte, ec map[string]string) (*SealedData, error) {
	return s.SealDataVersioned(ctx, action, name, plaintext, func(int) []byte { return aad }, ec)
}

// SealDataVersioned is SealData with additional data that depends on the
// version sealing it: aadFor(version) is the AAD, so a format that names
// the version inside the authenticated data (the XKS proxy's ciphertext
// metadata) cannot race a rotation.
func (s *Store) SealDataVersioned(ctx context.Context, action, name string, plaintext []byte, aadFor func(version int) []byte, ec map[string]string) (*SealedData, error) {
	if action != policy.ActionEncrypt && action != policy.ActionGenerateDataKey && action != policy.ActionReWrap {
		return nil, fmt.Errorf("%w: %s does not seal data", ErrInvalidOptions, action)
	}
	f, k, err := s.dataKey(name)
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
	if k.Backend == BackendPKCS11 {
		raw, err := s.rawAEAD(ctx, k, v)
		if err != nil {
			return nil, err
		}
		nonce, ct, err := raw.SealRaw(ctx, plaintext, aadFor(v.Version))
		if err != nil {
			return nil, err
		}
		return &SealedData{Version: v.Version, Nonce: nonce, Ciphertext: ct}, nil
	}
	aead, err := s.versionAEAD(f, name, v)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &SealedData{Version: v.Version, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plaintext, aadFor(v.Version))}, nil
}

// OpenData decrypts what SealData sealed under key name, deciding action
// (keystack:Decrypt or keystack:ReWrap) on d's version with ec. The version
// must be able to decrypt (enabled or decrypt-only, not below the key's
// minimum; ErrKeyDisabled). A ciphertext that does not authenticate with
// aad fails with keyring.ErrUnwrapFailed.
func (s *Store) OpenData(ctx context.Context, action, name string, d SealedData, aad []byte, ec map[string]string) ([]byte, error) {
	if action != policy.ActionDecrypt && action != policy.ActionReWrap {
		return nil, fmt.Errorf("%w: %s does not open data", ErrInvalidOptions, action)
	}
	f, k, err := s.dataKey(name)
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
	if k.Backend == BackendPKCS11 {
		raw, err := s.rawAEAD(ctx, k, v)
		if err != nil {
			return nil, err
		}
		return raw.OpenRaw(ctx, d.Nonce, d.Ciphertext, aad)
	}
	aead, err := s.versionAEAD(f, name, v)
	if err != nil {
		return nil, err
	}
	if len(d.Nonce) != aead.NonceSize() {
		return nil, keyring.ErrUnwrapFailed
	}
	pt, err := aead.Open(nil, d.Nonce, d.Ciphertext, aad)
	if err != nil {
		return nil, keyring.ErrUnwrapFailed
	}
	return pt, nil
}

// dataKey reads local AES key name and checks its server state. The
// state it returns is shared read-only (see view).
func (s *Store) dataKey(name string) (*storeFile, *keyRecord, error) {
	f, err := s.view(context.Background())
	if err != nil {
		return nil, nil, err
	}
	k, err := lookup(f, name)
	if err != nil {
		return nil, nil, err
	}
	if !k.sealsData() {
		return nil, nil, fmt.Errorf("%w: only keystack's own local AES keys and PKCS#11 AES keys serve KMS operations", ErrNotSupported)
	}
	if f.Server != nil {
		if st := f.Server.Keys[name].state(); st.State != KeyStateEnabled {
			return nil, nil, fmt.Errorf("%w: %q is %s", ErrKeyState, name, st.State)
		}
	}
	return f, k, nil
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

// GenerateRandom returns n random bytes (keystack:GenerateRandom on
// "random").
func (s *Store) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	if n < 1 || n > 1024 {
		return nil, fmt.Errorf("%w: 1 to 1024 random bytes, not %d", ErrInvalidOptions, n)
	}
	if err := s.authorizeResource(ctx, policy.ActionGenerateRandom, policy.ResourceRandom); err != nil {
		return nil, err
	}
	return randomKey(n)
}
