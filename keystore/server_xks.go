package keystore

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/policy"
)

// rawAEAD is a backend key that seals and opens data whole (the PKCS#11
// backend's AES keys: hsm.Backend.RawKeyring).
type rawAEAD interface {
	SealRaw(ctx context.Context, plaintext, aad []byte) (iv, ct []byte, err error)
	OpenRaw(ctx context.Context, iv, ct, aad []byte) ([]byte, error)
	KeyBits(ctx context.Context) (int, error)
}

// sealsData reports whether SealData and OpenData serve the key: a local
// AES key of keystack's own naming, or a PKCS#11 key.
func (k *keyRecord) sealsData() bool {
	if k.Backend == BackendPKCS11 {
		return true
	}
	return k.Backend == BackendLocal && !k.isRSA() && k.Namespace == ""
}

// rawAEAD returns version v of PKCS#11 key k as a rawAEAD.
func (s *Store) rawAEAD(ctx context.Context, k *keyRecord, v *versionRecord) (rawAEAD, error) {
	ds, err := capability[serverstore.DataSealer](s, k.Backend, "seal data")
	if err != nil {
		return nil, err
	}
	kr, err := ds.RawKeyring(ctx, v.Ref)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s backend: %w", k.Backend, err)
	}
	raw, ok := kr.(rawAEAD)
	if !ok {
		return nil, fmt.Errorf("%w: the %s key is not an AES key", ErrNotSupported, k.Backend)
	}
	return raw, nil
}

func (s serverOps) DataKeyInfo(ctx context.Context, name string) (*serverstore.DataKeyInfo, error) {
	f, k, err := s.viewKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, policy.ActionDescribeKey, name, 0, nil); err != nil {
		return nil, err
	}
	var info serverstore.DataKeyInfo
	if !k.sealsData() {
		return &info, nil
	}
	p := k.version(k.Primary)
	info.CanEncrypt = p != nil && p.State == StateEnabled
	for _, v := range k.Versions {
		info.CanDecrypt = info.CanDecrypt || v.State.canDecrypt() && v.Version >= k.MinDecrypt
	}
	info.Enabled = info.CanEncrypt && (f.Server == nil || f.Server.Keys[name].state().State == serverstore.Enabled)
	if info.Bits, err = s.dataKeyBits(ctx, k, p); err != nil {
		return nil, err
	}
	if err := s.tokenKeyUsage(ctx, k, p, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// tokenKeyUsage narrows info to what the token lets PKCS#11 key k's
// primary version do (CKA_ENCRYPT, CKA_DECRYPT), when its backend says.
func (s *Store) tokenKeyUsage(ctx context.Context, k *keyRecord, p *versionRecord, info *serverstore.DataKeyInfo) error {
	if k.Backend != BackendPKCS11 || p == nil {
		return nil
	}
	raw, err := s.rawAEAD(ctx, k, p)
	if err != nil {
		return err
	}
	u, ok := raw.(interface {
		KeyUsage(ctx context.Context) (encrypt, decrypt bool, err error)
	})
	if !ok {
		return nil
	}
	enc, dec, err := u.KeyUsage(ctx)
	info.CanEncrypt, info.CanDecrypt = info.CanEncrypt && enc, info.CanDecrypt && dec
	return err
}

func (s *Store) dataKeyBits(ctx context.Context, k *keyRecord, p *versionRecord) (int, error) {
	if p == nil {
		return 0, nil
	}
	if k.Backend == BackendLocal {
		var n int
		_, err := fmt.Sscanf(k.Kind, "aes-%d", &n)
		return n, err
	}
	raw, err := s.rawAEAD(ctx, k, p)
	if err != nil {
		return 0, err
	}
	return raw.KeyBits(ctx)
}

func (s serverOps) ProbeKey(ctx context.Context, name string) error {
	f, k, err := s.dataKey(ctx, name)
	if err != nil {
		return err
	}
	v := k.version(k.Primary)
	if v == nil || v.State != StateEnabled {
		return fmt.Errorf("%w: the primary version of %q is not enabled", ErrKeyDisabled, name)
	}
	msg := make([]byte, 32)
	if _, err := rand.Read(msg); err != nil {
		return err
	}
	c, err := s.dataCipher(ctx, f, name, k, v)
	if err != nil {
		return err
	}
	iv, ct, err := c.SealRaw(ctx, msg, []byte("keystack probe"))
	if err != nil {
		return err
	}
	got, err := c.OpenRaw(ctx, iv, ct, []byte("keystack probe"))
	if err != nil {
		return err
	}
	if string(got) != string(msg) {
		return fmt.Errorf("keystore: probe of %q returned other bytes", name)
	}
	return nil
}
