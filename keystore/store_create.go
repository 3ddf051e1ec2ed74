package keystore

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// CreateKeyOptions configures CreateKey.
type CreateKeyOptions struct {
	// Backend is "local" (the default), "aws-kms" or "pkcs11".
	Backend string
	// Ref is the KMS key ARN or PKCS#11 URI of an external key; it must be
	// empty for local keys and must not carry a PIN.
	Ref         string
	Description string
	// Generate, with the pkcs11 backend, makes the key on the token instead
	// of registering an existing one: Ref names the token only (no object=,
	// id= or type=), and version 1 is a new AES-256 key that never leaves
	// the token, labeled NAME/v1 with a random CKA_ID. Should recording it
	// in the store fail, the object is destroyed again.
	Generate bool
}

// ImportKeyOptions configures ImportKey. Exactly one of AESKey,
// RSAPrivateKey and RSAPublicKey is set.
type ImportKeyOptions struct {
	// AESKey is a 16, 24 or 32 byte wrapping key; it is copied.
	AESKey []byte
	// RSAPrivateKey imports a key pair; RSAPublicKey alone imports an
	// encrypt-only key. RSAPadding defaults to OAEP-SHA256.
	RSAPrivateKey *rsa.PrivateKey
	RSAPublicKey  *rsa.PublicKey
	RSAPadding    keyring.RSAPadding
	// Namespace and KeyName, given together, are used verbatim as the
	// EDKs' provider ID and key name, so that messages of other ESDK users
	// of the same raw key decrypt. Such keys have a single version.
	Namespace, KeyName string
	Description        string
}

// CreateKey adds a key with version 1 as primary. For the local backend it
// generates a random AES-256 key, sealed in the store; for external backends
// it records opts.Ref, resolved by the backend when it is a RefResolver
// (a KMS alias ARN becomes its key ARN). It fails with ErrKeyExists, ErrInvalidName,
// ErrBackendUnavailable, or ErrBadPassphrase/ErrLocked.
func (s *Store) CreateKey(ctx context.Context, name string, opts CreateKeyOptions) (*KeyInfo, error) {
	if err := s.authorize(ctx, policy.ActionCreateKey, name, 0, nil); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	backend := opts.Backend
	if backend == "" {
		backend = BackendLocal
	}
	if err := s.checkExternal(backend, opts.Ref); err != nil {
		return nil, err
	}
	if !opts.Generate {
		return s.createKey(ctx, name, backend, opts)
	}
	var err error
	if opts.Ref, err = s.generateTokenKey(ctx, backend, name, opts.Ref); err != nil {
		return nil, err
	}
	ki, err := s.createKey(ctx, name, backend, opts)
	if err != nil {
		return nil, s.discardGenerated(ctx, backend, opts.Ref, err)
	}
	return ki, nil
}

// createKey records key name of backend with version 1 (opts.Ref, or
// fresh local material).
func (s *Store) createKey(ctx context.Context, name, backend string, opts CreateKeyOptions) (*KeyInfo, error) {
	ref, alias, err := s.resolveRef(ctx, backend, opts.Ref)
	if err != nil {
		return nil, err
	}
	var material []byte
	if backend == BackendLocal {
		var err error
		if material, err = randomKey(32); err != nil {
			return nil, err
		}
		defer clear(material)
	}
	rec := &keyRecord{Backend: backend, Description: opts.Description, Primary: 1, Kind: backend}
	if backend == BackendLocal {
		rec.Kind = aesKind(len(material))
	}
	return s.addKey(ctx, name, rec, material != nil, func(v *versionRecord, seal func([]byte) ([]byte, error)) (err error) {
		v.Ref, v.Alias = ref, alias
		if material != nil {
			v.Material, err = seal(material)
		}
		return err
	}, "create")
}

// checkExternal validates the backend and reference of a new key.
func (s *Store) checkExternal(backend, ref string) error {
	if backend == BackendLocal {
		if ref != "" {
			return fmt.Errorf("%w: a local key takes no reference", ErrInvalidOptions)
		}
		return nil
	}
	if _, ok := s.backends[backend]; !ok && backend != BackendAWSKMS && backend != BackendPKCS11 {
		return fmt.Errorf("%w: %q", ErrBackendUnavailable, backend)
	}
	if ref == "" {
		return fmt.Errorf("%w: a %s key needs a reference (ARN or URI)", ErrInvalidOptions, backend)
	}
	if strings.Contains(strings.ToLower(ref), "pin-value") {
		// RFC 7512 allows a PIN in the URI; keystore.json is no place for it.
		return fmt.Errorf("%w: the key reference must not contain a PIN", ErrInvalidOptions)
	}
	if backend == BackendPKCS11 && hasVendorAttr(ref) {
		// The backend ignores them, and what a vendor put there (a
		// password, say) would be kept in keystore.json and shown.
		return fmt.Errorf("%w: the key reference has a vendor attribute (x-...): keystack ignores them and does not keep them; remove it", ErrInvalidOptions)
	}
	return nil
}

// hasVendorAttr reports whether PKCS#11 URI ref has an RFC 7512 vendor
// attribute ("x-NAME=") in its path or query.
func hasVendorAttr(ref string) bool {
	rest := strings.TrimPrefix(strings.ToLower(ref), "pkcs11:")
	for _, attr := range strings.FieldsFunc(rest, func(r rune) bool { return r == ';' || r == '?' || r == '&' }) {
		if strings.HasPrefix(attr, "x-") {
			return true
		}
	}
	return false
}

// addKey stores rec under name with a fresh version 1 that fill completes;
// fill's seal argument seals material for that version.
func (s *Store) addKey(ctx context.Context, name string, rec *keyRecord, sealed bool,
	fill func(v *versionRecord, seal func([]byte) ([]byte, error)) error, action string) (*KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	kek, err := s.kekIf(ctx, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	now := s.now().UTC()
	rec.Created = now
	var info *KeyInfo
	err = s.update(ctx, func(f *storeFile) error {
		if _, ok := f.Keys[name]; ok {
			return fmt.Errorf("%w: %q", ErrKeyExists, name)
		}
		v := &versionRecord{VersionInfo: VersionInfo{Version: 1, State: StateEnabled, Created: now,
			History: []Event{{Time: now, Action: action}}}}
		sealFn := func(m []byte) ([]byte, error) { return sealMaterial(f, kek, name, 1, m) }
		if err := fill(v, sealFn); err != nil {
			return err
		}
		rec.Versions = []*versionRecord{v}
		f.Keys[name] = rec
		info = rec.info(name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

// kekIf returns a copy of the key-encryption key when sealed material is
// involved and the store is sealed; otherwise nil.
func (s *Store) kekIf(ctx context.Context, needed bool) ([]byte, error) {
	if !needed {
		return nil, nil
	}
	f, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	return s.unlockKEK(f)
}

// ImportKey adds existing key material as a single-version key. Without
// Namespace/KeyName its EDKs are named like a local key's ("keystack",
// "NAME/v1"). Private material is sealed; an RSA public key is stored in
// clear and encrypts without the passphrase.
func (s *Store) ImportKey(ctx context.Context, name string, opts ImportKeyOptions) (*KeyInfo, error) {
	if err := s.authorize(ctx, policy.ActionImportKey, name, 0, nil); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	rec := &keyRecord{Backend: BackendLocal, Description: opts.Description, Primary: 1,
		Namespace: opts.Namespace, KeyName: opts.KeyName}
	if (opts.Namespace == "") != (opts.KeyName == "") {
		return nil, fmt.Errorf("%w: Namespace and KeyName go together", ErrInvalidOptions)
	}
	if opts.Namespace != "" {
		if err := keyring.CheckRawNames(opts.Namespace, opts.KeyName); err != nil {
			return nil, err
		}
	}
	material, public, err := importMaterial(rec, opts)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	return s.addKey(ctx, name, rec, material != nil, func(v *versionRecord, seal func([]byte) ([]byte, error)) (err error) {
		v.Public = public
		if material != nil {
			v.Material, err = seal(material)
		}
		return err
	}, "import")
}

// importMaterial checks the imported key, sets rec's kind and padding, and
// returns the secret material to seal (AES key or PKCS#8 DER) and the PKIX
// DER public key for RSA.
func importMaterial(rec *keyRecord, opts ImportKeyOptions) (material, public []byte, err error) {
	n := 0
	for _, set := range []bool{opts.AESKey != nil, opts.RSAPrivateKey != nil, opts.RSAPublicKey != nil && opts.RSAPrivateKey == nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, nil, fmt.Errorf("%w: give exactly one of an AES key, an RSA private key or an RSA public key", ErrInvalidOptions)
	}
	if opts.AESKey != nil {
		if _, err := keyring.NewRawAES(keyring.ProviderLocal, "check", opts.AESKey); err != nil {
			return nil, nil, err
		}
		rec.Kind = aesKind(len(opts.AESKey))
		return append([]byte(nil), opts.AESKey...), nil, nil
	}
	rec.Padding = opts.RSAPadding
	if rec.Padding == "" {
		rec.Padding = keyring.RSAOAEPSHA256
	}
	pub := opts.RSAPublicKey
	if opts.RSAPrivateKey != nil {
		if pub != nil && !pub.Equal(&opts.RSAPrivateKey.PublicKey) {
			return nil, nil, fmt.Errorf("%w: RSA public key does not match the private key", keyring.ErrInvalidKey)
		}
		pub = &opts.RSAPrivateKey.PublicKey
		if err := opts.RSAPrivateKey.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%w: RSA private key: %v", keyring.ErrInvalidKey, err)
		}
	}
	if _, err := keyring.NewRawRSA(keyring.ProviderLocal, "check", rec.Padding, pub, nil); err != nil {
		return nil, nil, err
	}
	rec.Kind = rsaKind(pub)
	if public, err = marshalRSAPublic(pub); err != nil {
		return nil, nil, err
	}
	if opts.RSAPrivateKey != nil {
		if material, err = x509.MarshalPKCS8PrivateKey(opts.RSAPrivateKey); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", keyring.ErrInvalidKey, err)
		}
	}
	return material, public, nil
}
