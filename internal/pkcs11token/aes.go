package pkcs11token

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/rawaes"
	"github.com/keystack/keystack/keyring"
	"github.com/miekg/pkcs11"
)

// AESKeyring wraps data keys with CKM_AES_GCM under an AES key on the
// token. Its encrypted data keys have exactly the ESDK raw AES keyring
// layout (framework/raw-aes-keyring.md, internal/rawaes), as
// keyring.NewRawAES's keyring writes them: provider ID = namespace, provider info = key label ‖ tag bits (128)
// ‖ IV length (12) ‖ IV, ciphertext = wrapped key ‖ tag, with the serialized
// encryption context as AAD (NIST SP 800-38D GCM).
type AESKeyring struct {
	tok       *Token
	namespace string
	label     string
	id        []byte
}

var _ envelope.Keyring = (*AESKeyring)(nil)

// AESKeyring returns a keyring for the AES key labeled label. The label is
// also the key name in the EDKs' provider info. It fails with
// ErrKeyNotFound when the token has no such secret key.
func (t *Token) AESKeyring(ctx context.Context, label string) (*AESKeyring, error) {
	return t.aesKeyring(ctx, label, nil)
}

func (t *Token) aesKeyring(ctx context.Context, label string, id []byte) (*AESKeyring, error) {
	err := t.run(ctx, func(s session) error {
		_, err := t.findKey(s, TypeSecretKey, label, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &AESKeyring{tok: t, namespace: t.namespace, label: label, id: id}, nil
}

// OnEncrypt implements envelope.Keyring: it generates the data key with
// crypto/rand when none is set and appends its wrapping under the token key.
// The IV is random; a token that picks its own IV is honored by reading
// the IV back from the GCM parameters.
func (k *AESKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	if err := keyring.EnsureDataKey(m); err != nil {
		return err
	}
	aad, err := envelope.SerializeContext(m.EncryptionContext)
	if err != nil {
		return err
	}
	var iv, ct []byte
	err = k.tok.run(ctx, func(s session) error {
		iv, ct, err = k.seal(s, m.DataKey, aad)
		return err
	})
	if err != nil {
		return fmt.Errorf("hsm: wrap with %q: %w", k.label, err)
	}
	if len(iv) != rawaes.IVLen || len(ct) != len(m.DataKey)+rawaes.TagLen {
		return fmt.Errorf("hsm: wrap with %q: token returned a %d-byte IV and %d-byte ciphertext", k.label, len(iv), len(ct))
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, envelope.EncryptedDataKey{
		ProviderID: k.namespace, ProviderInfo: rawaes.ProviderInfo(k.label, iv), Ciphertext: ct,
	})
	return nil
}

// seal runs C_EncryptInit/C_Encrypt and returns the IV actually used.
func (k *AESKeyring) seal(s session, dk, aad []byte) (iv, ct []byte, err error) {
	h, err := k.tok.findKey(s, TypeSecretKey, k.label, k.id)
	if err != nil {
		return nil, nil, err
	}
	iv = make([]byte, rawaes.IVLen)
	if _, err := rand.Read(iv); err != nil {
		return nil, nil, err
	}
	params := pkcs11.NewGCMParams(iv, aad, rawaes.TagBits)
	defer params.Free()
	c := k.tok.st.mod.ctx
	if err := c.EncryptInit(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
		return nil, nil, usageErr(callErr("C_EncryptInit", err))
	}
	ct, err = c.Encrypt(s.h, dk)
	if err != nil {
		return nil, nil, callErr("C_Encrypt", err)
	}
	return params.IV(), ct, nil
}

// OnDecrypt implements envelope.Keyring. It tries only EDKs whose provider
// ID is the namespace and whose provider info names this key with a
// 128-bit tag and 12-byte IV.
func (k *AESKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	aad, err := envelope.SerializeContext(m.EncryptionContext)
	if err != nil {
		return err
	}
	return keyring.DecryptFirst(ctx, m, edks, k.attempt, func(edk envelope.EncryptedDataKey) ([]byte, bool, error) {
		iv, ok := rawaes.Match(edk, k.namespace, k.label)
		if !ok {
			return nil, false, nil
		}
		if len(edk.Ciphertext) != m.Suite.DataKeyLen()+rawaes.TagLen {
			return nil, true, keyring.ErrInvalidEDK
		}
		var dk []byte
		err := k.tok.run(ctx, func(s session) (err error) {
			dk, err = k.open(s, iv, edk.Ciphertext, aad)
			return err
		})
		if err != nil {
			return nil, true, unwrapErr(err)
		}
		return dk, true, nil
	})
}

func (k *AESKeyring) open(s session, iv, ct, aad []byte) ([]byte, error) {
	h, err := k.tok.findKey(s, TypeSecretKey, k.label, k.id)
	if err != nil {
		return nil, err
	}
	params := pkcs11.NewGCMParams(iv, aad, rawaes.TagBits)
	defer params.Free()
	c := k.tok.st.mod.ctx
	if err := c.DecryptInit(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
		return nil, usageErr(callErr("C_DecryptInit", err))
	}
	dk, err := c.Decrypt(s.h, ct)
	return dk, callErr("C_Decrypt", err)
}

func (k *AESKeyring) attempt(err error) envelope.KeyAttempt {
	return envelope.KeyAttempt{ProviderID: k.namespace, KeyName: k.label, Err: err}
}

// unwrapErr classifies an unwrap failure: a ciphertext the token refuses
// is keyring.ErrUnwrapFailed (with the C call named for diagnosis);
// session, login and lookup failures keep their own class.
func unwrapErr(err error) error {
	var ce *CallError
	if errors.As(err, &ce) && (ce.Call == "C_Decrypt" || ce.Code == pkcs11.CKR_ENCRYPTED_DATA_INVALID ||
		ce.Code == pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE) {
		return fmt.Errorf("%w: %w", keyring.ErrUnwrapFailed, err)
	}
	return err
}

// usageErr marks a key the token does not let encrypt or decrypt
// (CKR_KEY_FUNCTION_NOT_PERMITTED: CKA_ENCRYPT or CKA_DECRYPT false) as
// keyring.ErrNotSupported.
func usageErr(err error) error {
	var ce *CallError
	if errors.As(err, &ce) && ce.Code == pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED {
		return fmt.Errorf("%w: %w", keyring.ErrNotSupported, err)
	}
	return err
}

// KeyUsage reports whether the token lets the key encrypt (CKA_ENCRYPT)
// and decrypt (CKA_DECRYPT).
func (k *AESKeyring) KeyUsage(ctx context.Context) (encrypt, decrypt bool, err error) {
	err = k.tok.run(ctx, func(s session) error {
		h, err := k.tok.findKey(s, TypeSecretKey, k.label, k.id)
		if err != nil {
			return err
		}
		a, err := k.tok.st.mod.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, nil), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, nil)})
		if err != nil {
			return callErr("C_GetAttributeValue", err)
		}
		encrypt = len(a[0].Value) == 1 && a[0].Value[0] != 0
		decrypt = len(a[1].Value) == 1 && a[1].Value[0] != 0
		return nil
	})
	return encrypt, decrypt, err
}

// SealRaw encrypts plaintext with CKM_AES_GCM under the token key, with
// aad as additional data, for callers that frame the result themselves
// (the XKS proxy). The 12-byte IV comes from crypto/rand, since SoftHSM2
// cannot generate GCM IVs; it returns the IV used and ciphertext ‖ tag
// (16 bytes).
func (k *AESKeyring) SealRaw(ctx context.Context, plaintext, aad []byte) (iv, ct []byte, err error) {
	err = k.tok.run(ctx, func(s session) error {
		iv, ct, err = k.seal(s, plaintext, aad)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("hsm: encrypt with %q: %w", k.label, err)
	}
	if len(iv) != rawaes.IVLen || len(ct) != len(plaintext)+rawaes.TagLen {
		return nil, nil, fmt.Errorf("hsm: encrypt with %q: token returned a %d-byte IV and %d-byte ciphertext", k.label, len(iv), len(ct))
	}
	return iv, ct, nil
}

// OpenRaw decrypts what SealRaw returned. A ciphertext that does not
// authenticate under iv and aad fails with keyring.ErrUnwrapFailed.
func (k *AESKeyring) OpenRaw(ctx context.Context, iv, ct, aad []byte) ([]byte, error) {
	if len(iv) != rawaes.IVLen || len(ct) < rawaes.TagLen {
		return nil, keyring.ErrUnwrapFailed
	}
	var pt []byte
	err := k.tok.run(ctx, func(s session) (err error) {
		pt, err = k.open(s, iv, ct, aad)
		return err
	})
	if err != nil {
		return nil, unwrapErr(err)
	}
	return pt, nil
}

// KeyBits returns the token key's length in bits (CKA_VALUE_LEN).
func (k *AESKeyring) KeyBits(ctx context.Context) (int, error) {
	var n int
	err := k.tok.run(ctx, func(s session) error {
		h, err := k.tok.findKey(s, TypeSecretKey, k.label, k.id)
		if err != nil {
			return err
		}
		a, err := k.tok.st.mod.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)})
		if err != nil {
			return callErr("C_GetAttributeValue", err)
		}
		switch v := a[0].Value; len(v) { // a CK_ULONG in host byte order
		case 8:
			n = int(binary.NativeEndian.Uint64(v))
		case 4:
			n = int(binary.NativeEndian.Uint32(v))
		default:
			return fmt.Errorf("hsm: CKA_VALUE_LEN of %d bytes", len(v))
		}
		n *= 8
		return nil
	})
	return n, err
}
