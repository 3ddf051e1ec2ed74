package pkcs11token

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/keystack/keystack/envelope"
)

// Backend builds keyrings from PKCS#11 URIs, for keystore.Open's Backends
// map (key "pkcs11"). Tokens it opens stay open, shared across keys, until
// Close. It is safe for concurrent use.
type Backend struct {
	opts   Options
	mu     sync.Mutex
	tokens map[string]*Token
	closed bool
}

// NewBackend returns a Backend that opens tokens with opts.
func NewBackend(opts Options) *Backend {
	return &Backend{opts: opts, tokens: map[string]*Token{}}
}

// Keyring returns the keyring for the key a PKCS#11 URI names, e.g.
//
//	pkcs11:token=prod;object=payments%2Fv2;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so
//
// object= is required and becomes the key name in encrypted data keys;
// type= selects an AES key (secret-key) or an RSA key pair (private or
// public); without it the token decides.
func (b *Backend) Keyring(ctx context.Context, ref string) (envelope.Keyring, error) {
	t, u, err := b.keyToken(ctx, ref)
	if err != nil {
		return nil, err
	}
	return t.keyringFor(ctx, u.Object, u.ID, u.Type)
}

// keyToken parses a key reference, which must name an object, and opens
// the token it selects.
func (b *Backend) keyToken(ctx context.Context, ref string) (*Token, *URI, error) {
	u, err := ParseURI(ref)
	if err != nil {
		return nil, u, err
	}
	if u.Object == "" {
		return nil, u, fmt.Errorf("%w: a key reference needs object=LABEL", ErrInvalidURI)
	}
	t, err := b.token(ctx, u)
	return t, u, err
}

func (b *Backend) token(ctx context.Context, u *URI) (*Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	key := u.tokenKey()
	if t := b.tokens[key]; t != nil {
		return t, nil
	}
	t, err := Open(ctx, u, b.opts)
	if err != nil {
		return nil, err
	}
	b.tokens[key] = t
	return t, nil
}

// Close closes every token the Backend opened.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	var errs []error
	for k, t := range b.tokens {
		errs = append(errs, t.Close())
		delete(b.tokens, k)
	}
	return errors.Join(errs...)
}

// RawKeyring returns the AES key a PKCS#11 URI names as an *AESKeyring,
// whose SealRaw and OpenRaw seal data whole (the key server's DataSealer).
func (b *Backend) RawKeyring(ctx context.Context, ref string) (envelope.Keyring, error) {
	t, u, err := b.keyToken(ctx, ref)
	if err != nil {
		return nil, err
	}
	return t.aesKeyring(ctx, u.Object, u.ID)
}
