package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"strconv"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/scrypt"

	"github.com/keystack/keystack/internal/testhook"
)

// KDF names accepted by InitOptions.KDF.
const (
	KDFArgon2id = "argon2id"
	KDFScrypt   = "scrypt"
)

// kdfParams is the passphrase KDF recorded in keystore.json. Argon2id
// follows RFC 9106; scrypt follows RFC 7914.
type kdfParams struct {
	Name string `json:"name"`
	Salt []byte `json:"salt"`
	// Argon2id.
	Time      uint32 `json:"time,omitempty"`
	MemoryKiB uint32 `json:"memory_kib,omitempty"`
	Threads   uint8  `json:"threads,omitempty"`
	// Scrypt.
	LogN uint8 `json:"log_n,omitempty"`
	R    int   `json:"r,omitempty"`
	P    int   `json:"p,omitempty"`
}

// Default KDF costs: RFC 9106's second recommended option scaled to 64 MiB,
// and scrypt N=2^15, r=8, p=1. Tests lower them to stay fast.
var (
	defaultArgon2 = kdfParams{Name: KDFArgon2id, Time: 3, MemoryKiB: 64 << 10, Threads: 2}
	defaultScrypt = kdfParams{Name: KDFScrypt, LogN: 15, R: 8, P: 1}
)

// Bounds on KDF parameters read from a store file, so a tampered file cannot
// make Open allocate gigabytes or spin for hours.
const (
	saltLen         = 16
	kekLen          = 32
	maxArgonTime    = 64
	maxArgonMemKiB  = 1 << 20 // 1 GiB
	maxScryptLogN   = 22
	maxScryptRP     = 1 << 10
	sealNonceLen    = 12
	sealOverhead    = sealNonceLen + 16
	verifierLabel   = "keystack store verifier v1"
	materialAADBase = "keystack key material v1\x00"
)

func newKDFParams(name string) (kdfParams, error) {
	var p kdfParams
	switch name {
	case "", KDFArgon2id:
		p = defaultArgon2
	case KDFScrypt:
		p = defaultScrypt
	default:
		return p, fmt.Errorf("%w: unknown KDF %q (want %q or %q)", ErrInvalidOptions, name, KDFArgon2id, KDFScrypt)
	}
	if testhook.CheapKDF {
		p.Time, p.MemoryKiB, p.Threads, p.LogN = min(p.Time, 1), min(p.MemoryKiB, 64), min(p.Threads, 1), min(p.LogN, 4)
	}
	p.Salt = make([]byte, saltLen)
	_, err := rand.Read(p.Salt)
	return p, err
}

func (p kdfParams) check() error {
	bad := len(p.Salt) < saltLen || len(p.Salt) > 64
	switch p.Name {
	case KDFArgon2id:
		bad = bad || p.Time == 0 || p.Time > maxArgonTime || p.Threads == 0 ||
			p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgonMemKiB
	case KDFScrypt:
		bad = bad || p.LogN < 1 || p.LogN > maxScryptLogN || p.R < 1 || p.P < 1 ||
			p.R > maxScryptRP || p.P > maxScryptRP || p.R*p.P >= 1<<20
	default:
		bad = true
	}
	if bad {
		return fmt.Errorf("%w: KDF parameters out of range", ErrCorruptStore)
	}
	return nil
}

// deriveKEK derives the store's key-encryption key from the passphrase.
func (p kdfParams) deriveKEK(passphrase []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.Name == KDFArgon2id {
		return argon2.IDKey(passphrase, p.Salt, p.Time, p.MemoryKiB, p.Threads, kekLen), nil
	}
	k, err := scrypt.Key(passphrase, p.Salt, 1<<p.LogN, p.R, p.P, kekLen)
	if err != nil {
		return nil, fmt.Errorf("%w: scrypt: %v", ErrCorruptStore, err)
	}
	return k, nil
}

// seal encrypts plaintext with AES-256-GCM (NIST SP 800-38D) under kek with
// a random 96-bit nonce: nonce ‖ ciphertext ‖ tag. Random nonces are safe
// here: a store seals far fewer than 2^32 values under one KEK.
func seal(kek, plaintext, aad []byte) ([]byte, error) {
	aead, err := newSealAEAD(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, sealNonceLen, sealOverhead+len(plaintext))
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[:sealNonceLen], plaintext, aad), nil
}

// unseal reverses seal. Its only failure is the opaque errUnseal.
func unseal(kek, sealed, aad []byte) ([]byte, error) {
	aead, err := newSealAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < sealOverhead {
		return nil, errUnseal
	}
	pt, err := aead.Open(nil, sealed[:sealNonceLen], sealed[sealNonceLen:], aad)
	if err != nil {
		return nil, errUnseal
	}
	return pt, nil
}

var errUnseal = fmt.Errorf("%w: sealed key material does not authenticate", ErrCorruptStore)

func newSealAEAD(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// materialAAD binds sealed material to its key name and version, so that
// swapping sealed blobs between keys or versions in the file fails to open.
func materialAAD(name string, version int) []byte {
	return []byte(materialAADBase + name + "\x00" + strconv.Itoa(version))
}

// newVerifier seals a random check value; checkVerifier opens it and
// compares in constant time, telling a wrong passphrase from a right one
// without unsealing any key.
func newVerifier(kek []byte) ([]byte, error) {
	check := make([]byte, 32)
	if _, err := rand.Read(check); err != nil {
		return nil, err
	}
	sealed, err := seal(kek, check, []byte(verifierLabel))
	if err != nil {
		return nil, err
	}
	// check is stored twice: sealed, and in clear after the sealed blob, so
	// that opening alone is not the only test.
	return append(sealed, check...), nil
}

func checkVerifier(kek, verifier []byte) error {
	if len(verifier) != sealOverhead+32+32 {
		return fmt.Errorf("%w: bad passphrase verifier", ErrCorruptStore)
	}
	sealed, plain := verifier[:len(verifier)-32], verifier[len(verifier)-32:]
	got, err := unseal(kek, sealed, []byte(verifierLabel))
	if err != nil || subtle.ConstantTimeCompare(got, plain) != 1 {
		return ErrBadPassphrase
	}
	return nil
}
