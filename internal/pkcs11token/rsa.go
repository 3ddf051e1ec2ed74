package pkcs11token

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/miekg/pkcs11"
)

// RSAKeyring wraps data keys with RSA-OAEP (SHA-256, MGF1-SHA-256; RFC 8017)
// under an RSA key pair on the token. Wrapping uses the public key in Go;
// unwrapping runs CKM_RSA_PKCS_OAEP on the token with the private key (or,
// on tokens without SHA-256 OAEP, raw RSA on the token plus a constant-time
// OAEP check in Go; the private key never leaves the token either way). Its
// EDKs have the ESDK raw RSA keyring layout (framework/raw-rsa-keyring.md):
// provider ID = namespace, provider info = key label, ciphertext = RSA
// ciphertext, so keyring.NewRawRSA(namespace, label,
// keyring.RSAOAEPSHA256, pub, nil) encrypts for it without the HSM. Like
// the ESDK raw RSA keyring it does not bind the encryption context.
type RSAKeyring struct {
	tok       *Token
	namespace string
	label     string
	id        []byte
	pub       *rsa.PublicKey
	hasPriv   bool
}

var _ envelope.Keyring = (*RSAKeyring)(nil)

// RSAKeyring returns a keyring for the RSA key pair labeled label. With only
// a public key object on the token, it encrypts but cannot decrypt. It fails
// with ErrKeyNotFound when neither key is there.
func (t *Token) RSAKeyring(ctx context.Context, label string) (*RSAKeyring, error) {
	return t.rsaKeyring(ctx, label, nil)
}

func (t *Token) rsaKeyring(ctx context.Context, label string, id []byte) (*RSAKeyring, error) {
	k := &RSAKeyring{tok: t, namespace: t.namespace, label: label, id: id}
	err := t.run(ctx, func(s session) error {
		priv, err := t.findKey(s, TypePrivateKey, label, id)
		switch {
		case err == nil:
			k.hasPriv = true
		case !errors.Is(err, ErrKeyNotFound):
			return err
		}
		pubH, err := t.findKey(s, TypePublicKey, label, id)
		if errors.Is(err, ErrKeyNotFound) && k.hasPriv {
			pubH, err = priv, nil // a private key object carries the modulus and public exponent too
		}
		if err != nil {
			return err
		}
		k.pub, err = t.readPublicKey(s, pubH)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (t *Token) readPublicKey(s session, h pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	attrs, err := t.st.mod.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, callErr("C_GetAttributeValue", err)
	}
	n := new(big.Int).SetBytes(attrs[0].Value)
	e := new(big.Int).SetBytes(attrs[1].Value)
	if n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("%w: RSA key has a %d-bit modulus or an unusable exponent", ErrInvalidKey, n.BitLen())
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// PublicKey returns the key pair's public key.
func (k *RSAKeyring) PublicKey() *rsa.PublicKey { return k.pub }

// PublicKeyPEM returns the public key as a PEM "PUBLIC KEY" block
// (SubjectPublicKeyInfo, RFC 5280), which keyring.ParseRSAPublicKeyPEM reads.
func (k *RSAKeyring) PublicKeyPEM(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// OnEncrypt implements envelope.Keyring.
func (k *RSAKeyring) OnEncrypt(_ context.Context, m *envelope.EncryptionMaterials) error {
	if err := keyring.EnsureDataKey(m); err != nil {
		return err
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, k.pub, m.DataKey, nil)
	if err != nil {
		return fmt.Errorf("hsm: RSA wrap with %q: %w", k.label, err)
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, envelope.EncryptedDataKey{
		ProviderID: k.namespace, ProviderInfo: []byte(k.label), Ciphertext: ct,
	})
	return nil
}

// OnDecrypt implements envelope.Keyring. It tries only EDKs whose provider
// ID and info name this key, and whose ciphertext is one modulus long.
func (k *RSAKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	return keyring.DecryptFirst(ctx, m, edks, k.attempt, func(edk envelope.EncryptedDataKey) ([]byte, bool, error) {
		if edk.ProviderID != k.namespace || string(edk.ProviderInfo) != k.label {
			return nil, false, nil
		}
		if !k.hasPriv {
			return nil, true, keyring.ErrNoPrivateKey
		}
		if len(edk.Ciphertext) != k.pub.Size() {
			return nil, true, keyring.ErrInvalidEDK
		}
		var dk []byte
		err := k.tok.run(ctx, func(s session) (err error) {
			dk, err = k.unwrap(s, edk.Ciphertext)
			return err
		})
		if err != nil {
			return nil, true, unwrapErr(err)
		}
		return dk, true, nil
	})
}

// unwrap decrypts ct on the token with CKM_RSA_PKCS_OAEP (SHA-256). A token
// that refuses SHA-256 OAEP parameters (SoftHSM 2.6 supports only SHA-1)
// is remembered and from then on decrypts with CKM_RSA_X_509, the padding
// being checked in constant time by oaepDecodeSHA256.
func (k *RSAKeyring) unwrap(s session, ct []byte) ([]byte, error) {
	h, err := k.tok.findKey(s, TypePrivateKey, k.label, k.id)
	if err != nil {
		return nil, err
	}
	c := k.tok.st.mod.ctx
	if !k.tok.st.rawRSA.Load() {
		params := pkcs11.NewOAEPParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, nil)
		err := c.DecryptInit(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, params)}, h)
		if err == nil {
			dk, err := c.Decrypt(s.h, ct)
			return dk, callErr("C_Decrypt", err)
		}
		if !isCode(err, pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_MECHANISM_PARAM_INVALID) {
			return nil, callErr("C_DecryptInit", err)
		}
		k.tok.st.rawRSA.Store(true)
	}
	if err := c.DecryptInit(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)}, h); err != nil {
		return nil, callErr("C_DecryptInit", err)
	}
	em, err := c.Decrypt(s.h, ct)
	if err != nil {
		return nil, callErr("C_Decrypt", err)
	}
	dk, err := oaepDecodeSHA256(em, k.pub.Size())
	clear(em)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", keyring.ErrUnwrapFailed, err)
	}
	return dk, nil
}

func (k *RSAKeyring) attempt(err error) envelope.KeyAttempt {
	return envelope.KeyAttempt{ProviderID: k.namespace, KeyName: k.label, Err: err}
}
