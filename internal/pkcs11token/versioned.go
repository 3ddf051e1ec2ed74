package pkcs11token

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// maxNameLen bounds a key name; token labels are often limited too.
const maxNameLen = 100

// versionLabel returns the token object label of version v of key name:
// "name/vN", e.g. "payments/v2". That label is also the key name written in
// the encrypted data keys' provider info.
func versionLabel(name string, v int) string {
	return keyring.VersionedKeyName(name, v)
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: key name must be 1 to %d bytes", ErrInvalidKey, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: key name %q: only letters, digits, '-', '_' and '.' are allowed", ErrInvalidKey, name)
		}
	}
	return nil
}

// Keyring returns a keyring for the versions of key name held on the token
// under the labels "NAME/vN": the primary version wraps new
// data keys and every listed version unwraps. Each version may be an AES key
// or an RSA key pair. It fails with ErrKeyNotFound naming the first
// missing label.
func (t *Token) Keyring(ctx context.Context, name string, versions []int, primary int) (envelope.Keyring, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if !slices.Contains(versions, primary) {
		return nil, fmt.Errorf("%w: primary version %d is not among the versions %v", ErrInvalidKey, primary, versions)
	}
	vk := &versionedKeyring{}
	for _, v := range versions {
		if v < 1 {
			return nil, fmt.Errorf("%w: version %d, versions start at 1", ErrInvalidKey, v)
		}
		kr, err := t.keyringFor(ctx, versionLabel(name, v), nil, "")
		if err != nil {
			return nil, err
		}
		if v == primary {
			vk.primary = kr
		}
		vk.all = append(vk.all, kr)
	}
	return vk, nil
}

// keyringFor returns an AES or RSA keyring for the object labeled label,
// of type typ or, when typ is empty, of whichever kind the token holds.
func (t *Token) keyringFor(ctx context.Context, label string, id []byte, typ ObjectType) (envelope.Keyring, error) {
	switch typ {
	case TypeSecretKey:
		return t.aesKeyring(ctx, label, id)
	case TypePrivateKey, TypePublicKey:
		return t.rsaKeyring(ctx, label, id)
	}
	kr, err := t.aesKeyring(ctx, label, id)
	if !errors.Is(err, ErrKeyNotFound) {
		return kr, err
	}
	rk, rerr := t.rsaKeyring(ctx, label, id)
	if errors.Is(rerr, ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: no AES or RSA key labeled %q on token %q", ErrKeyNotFound, label, t.st.label)
	}
	return rk, rerr
}

// versionedKeyring encrypts with its primary version and decrypts with any.
type versionedKeyring struct {
	primary envelope.Keyring
	all     []envelope.Keyring
}

func (k *versionedKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	return k.primary.OnEncrypt(ctx, m)
}

func (k *versionedKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	all := &envelope.NoDecryptKeyError{}
	for _, kr := range k.all {
		err := kr.OnDecrypt(ctx, m, edks)
		if err == nil && m.DataKey != nil {
			return nil
		}
		var nerr *envelope.NoDecryptKeyError
		if !errors.As(err, &nerr) {
			return err
		}
		all.Attempts = append(all.Attempts, nerr.Attempts...)
	}
	return all
}
