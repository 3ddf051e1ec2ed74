package keystore

import (
	"context"
	"fmt"
	"strings"

	"github.com/keystack/keystack/envelope"
)

// Backend builds keyrings for keys held outside the store (AWS KMS,
// PKCS#11); the CLI registers them in OpenOptions.Backends by name.
type Backend interface {
	// Keyring returns a keyring for the key ref names: a KMS key ARN, or a
	// complete RFC 7512 PKCS#11 URI ("pkcs11:token=…;object=…").
	Keyring(ctx context.Context, ref string) (envelope.Keyring, error)
}

// RefResolver is a Backend whose references have a canonical form that
// messages record: AWS KMS EDKs name the key ARN, never the alias ARN a
// key was registered by. CreateKey and RotateKeyTo store the resolved
// reference (and the one given, as the version's Alias), so a key
// registered by alias decrypts its own messages.
type RefResolver interface {
	// ResolveRef returns ref's canonical form; it may ask the backend.
	ResolveRef(ctx context.Context, ref string) (string, error)
}

// resolveRef returns the reference to store for ref, and the alias it was
// given as ("" when ref is already canonical).
func (s *Store) resolveRef(ctx context.Context, backend, ref string) (resolved, alias string, err error) {
	r, ok := backendAs[RefResolver](s.backends[backend])
	if !ok {
		return ref, "", nil
	}
	if resolved, err = r.ResolveRef(ctx, ref); err != nil {
		return "", "", fmt.Errorf("keystore: %s backend: resolving the key reference: %w", backend, err)
	}
	if resolved == ref {
		return ref, "", nil
	}
	return resolved, ref, nil
}

// splitSpec parses a key spec given to EncryptKeyring or DecryptKeyring:
// "arn:aws…" is an AWS KMS ARN, "pkcs11:…" a PKCS#11 URI passed whole,
// "BACKEND:REF" names a backend, and anything else is a store key name.
func splitSpec(spec string) (backend, ref string, external bool) {
	switch {
	case strings.HasPrefix(spec, "arn:aws"):
		return BackendAWSKMS, spec, true
	case strings.HasPrefix(spec, BackendPKCS11+":"):
		if rest := strings.TrimPrefix(spec, BackendPKCS11+":"); strings.HasPrefix(rest, BackendPKCS11+":") {
			return BackendPKCS11, rest, true // "pkcs11:" + URI
		}
		return BackendPKCS11, spec, true
	}
	backend, ref, ok := strings.Cut(spec, ":")
	if !ok {
		return "", spec, false
	}
	return backend, ref, true
}

// externalKeyring resolves ref through the registered backend. Errors name
// the backend but never the reference, which may carry credentials.
func (s *Store) externalKeyring(ctx context.Context, backend, ref string) (envelope.Keyring, error) {
	b, ok := s.backends[backend]
	if !ok || b == nil {
		return nil, fmt.Errorf("%w: %q is not registered", ErrBackendUnavailable, backend)
	}
	if ref == "" {
		return nil, fmt.Errorf("%w: empty %s key reference", ErrInvalidOptions, backend)
	}
	kr, err := b.Keyring(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s backend: %w", backend, err)
	}
	return kr, nil
}
