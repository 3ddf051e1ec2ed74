package keyring

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // OAEP-SHA1 for ESDK compatibility
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/keystack/keystack/envelope"
)

// RSAPadding is an ESDK raw RSA keyring padding scheme (framework/raw-rsa-keyring.md).
type RSAPadding string

const (
	RSAOAEPSHA1   RSAPadding = "oaep-sha1"
	RSAOAEPSHA256 RSAPadding = "oaep-sha256"
	RSAOAEPSHA384 RSAPadding = "oaep-sha384"
	RSAOAEPSHA512 RSAPadding = "oaep-sha512"
	// RSAPKCS1 is PKCS#1 v1.5, accepted for reading messages other ESDK
	// users wrote with it; keystack never wraps with it.
	RSAPKCS1 RSAPadding = "pkcs1"
)

// Valid reports whether p is one of the paddings above.
func (p RSAPadding) Valid() bool {
	_, err := p.hash()
	return err == nil
}

func (p RSAPadding) hash() (crypto.Hash, error) {
	switch p {
	case RSAOAEPSHA1:
		return crypto.SHA1, nil
	case RSAOAEPSHA256:
		return crypto.SHA256, nil
	case RSAOAEPSHA384:
		return crypto.SHA384, nil
	case RSAOAEPSHA512:
		return crypto.SHA512, nil
	case RSAPKCS1:
		return 0, nil
	}
	return 0, fmt.Errorf("%w: unknown RSA padding %q", ErrInvalidKey, string(p))
}

// rawRSA is the keyring NewRawRSA returns.
type rawRSA struct {
	namespace, name string
	padding         RSAPadding
	hash            crypto.Hash
	pub             *rsa.PublicKey
	priv            *rsa.PrivateKey
}

var _ envelope.Keyring = (*rawRSA)(nil)

// NewRawRSA returns a keyring that wraps data keys with RSA under an
// in-memory key pair, producing the ESDK raw RSA keyring's EDKs:
// provider ID = namespace, provider info = key name, ciphertext = RSA
// ciphertext of the data key. priv may be nil: with only a public key it
// can encrypt but not decrypt (ErrNoPrivateKey). pub may be nil when priv
// is set (it is derived).
func NewRawRSA(namespace, keyName string, padding RSAPadding, pub *rsa.PublicKey, priv *rsa.PrivateKey) (envelope.Keyring, error) {
	if err := CheckRawNames(namespace, keyName); err != nil {
		return nil, err
	}
	h, err := padding.hash()
	if err != nil {
		return nil, err
	}
	if pub == nil && priv != nil {
		pub = &priv.PublicKey
	}
	if pub == nil {
		return nil, fmt.Errorf("%w: RSA keyring needs a public or private key", ErrInvalidKey)
	}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("%w: RSA key of %d bits, at least 2048 required", ErrInvalidKey, pub.N.BitLen())
	}
	return &rawRSA{namespace: namespace, name: keyName, padding: padding, hash: h, pub: pub, priv: priv}, nil
}

// OnEncrypt implements envelope.Keyring.
func (k *rawRSA) OnEncrypt(_ context.Context, m *envelope.EncryptionMaterials) error {
	if err := EnsureDataKey(m); err != nil {
		return err
	}
	if k.padding == RSAPKCS1 {
		return fmt.Errorf("%w: PKCS#1 v1.5 is accepted for decryption only; use OAEP to encrypt", ErrNotSupported)
	}
	ct, err := rsa.EncryptOAEP(k.hash.New(), rand.Reader, k.pub, m.DataKey, nil)
	if err != nil {
		return fmt.Errorf("keyring: RSA wrap with %s: %w", k.name, err)
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, envelope.EncryptedDataKey{
		ProviderID: k.namespace, ProviderInfo: []byte(k.name), Ciphertext: ct,
	})
	return nil
}

// OnDecrypt implements envelope.Keyring.
func (k *rawRSA) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	return DecryptFirst(ctx, m, edks, k.attempt, func(edk envelope.EncryptedDataKey) ([]byte, bool, error) {
		if edk.ProviderID != k.namespace || string(edk.ProviderInfo) != k.name {
			return nil, false, nil
		}
		if k.priv == nil {
			return nil, true, ErrNoPrivateKey
		}
		dk, err := k.unwrap(edk.Ciphertext, m.Suite.DataKeyLen())
		if err != nil {
			return nil, true, ErrUnwrapFailed
		}
		return dk, true, nil
	})
}

func (k *rawRSA) unwrap(ct []byte, keyLen int) ([]byte, error) {
	if k.padding != RSAPKCS1 {
		return rsa.DecryptOAEP(k.hash.New(), nil, k.priv, ct, nil)
	}
	// The session-key form answers a padding error with a random key, in
	// constant time, so a failed unwrap is no Bleichenbacher oracle; the
	// wrong key then fails the header's authentication like any wrong key.
	key := make([]byte, keyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	//lint:ignore SA1019 reading PKCS#1 v1.5 EDKs is required for ESDK compatibility
	if err := rsa.DecryptPKCS1v15SessionKey(nil, k.priv, ct, key); err != nil {
		return nil, err
	}
	return key, nil
}

func (k *rawRSA) attempt(err error) envelope.KeyAttempt {
	return envelope.KeyAttempt{ProviderID: k.namespace, KeyName: k.name, Err: err}
}

// ParseRSAPrivateKeyPEM parses a PEM PKCS#8 (or PKCS#1) RSA private key.
func ParseRSAPrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrInvalidKey)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
		return nil, fmt.Errorf("%w: PKCS#8 key is not RSA", ErrInvalidKey)
	}
	if rk, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return rk, nil
	}
	return nil, fmt.Errorf("%w: not a PKCS#8 or PKCS#1 RSA private key", ErrInvalidKey)
}

// ParseRSAPublicKeyPEM parses a PEM SubjectPublicKeyInfo (or PKCS#1) RSA public key.
func ParseRSAPublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrInvalidKey)
	}
	if k, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil
		}
		return nil, fmt.Errorf("%w: public key is not RSA", ErrInvalidKey)
	}
	if rk, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		return rk, nil
	}
	return nil, fmt.Errorf("%w: not an SPKI or PKCS#1 RSA public key", ErrInvalidKey)
}
