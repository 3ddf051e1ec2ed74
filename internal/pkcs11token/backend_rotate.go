package pkcs11token

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/keystack/keystack/internal/keyname"
)

// The Backend gives every key version its own token object, so the store
// can rotate and destroy versions of pkcs11 keys: it is a
// keystore.VersionGenerator and a keystore.VersionDestroyer (asserted in
// keystore's tests, so that hsm need not import the store).

// GenerateVersion creates version of the key ref names: a new key of the
// same kind that never leaves the token, an RSA key pair of the same size
// when ref names an RSA key (see [Token.GenerateRSAKeyPair]), else an
// AES-256 key (see [Token.GenerateAESKey]), labeled "BASE/vN" (N the
// version) where BASE is ref's object label without a "/vN" suffix, with
// a random 16-byte CKA_ID of its own. It returns ref with that label, that
// id= and type=secret-key or type=private, keeping the token selection,
// module-path and pin-source: the reference selects the new object alone,
// so that DestroyVersion of it can never reach another process's object
// of the same label. It fails with ErrKeyExists when the label is taken.
func (b *Backend) GenerateVersion(ctx context.Context, ref string, version int) (string, error) {
	u, err := ParseURI(ref)
	if err != nil {
		return "", err
	}
	if u.Object == "" || version < 1 {
		return "", fmt.Errorf("%w: a versioned key needs object=LABEL and a version >= 1", ErrInvalidURI)
	}
	t, err := b.token(ctx, u)
	if err != nil {
		return "", err
	}
	bits, err := t.rsaBits(ctx, u)
	if err != nil {
		return "", err
	}
	id := make([]byte, 16)
	rand.Read(id)
	nu := *u
	nu.Object, nu.ID, nu.Type = versionLabel(baseLabel(u.Object), version), id, TypeSecretKey
	if bits > 0 {
		nu.Type = TypePrivateKey
		err = t.GenerateRSAKeyPair(ctx, nu.Object, id, bits)
	} else {
		err = t.GenerateAESKey(ctx, nu.Object, id)
	}
	if err != nil {
		return "", err
	}
	return nu.String(), nil
}

// rsaBits returns the modulus size of the RSA key (pair) u names, or 0
// when it names no RSA key: a new version keeps the kind of the old one,
// so an RSA key whose public half encrypts elsewhere stays RSA.
func (t *Token) rsaBits(ctx context.Context, u *URI) (int, error) {
	if u.Type == TypeSecretKey {
		return 0, nil
	}
	bits := 0
	err := t.run(ctx, func(s session) error {
		for _, typ := range []ObjectType{TypePublicKey, TypePrivateKey} {
			hs, err := t.findObjects(s, typ, u.Object, u.ID, 1)
			if err != nil {
				return err
			}
			if len(hs) == 0 {
				continue
			}
			info, err := t.describe(s, hs[0], typ)
			if err != nil {
				return err
			}
			if info.KeyType == "RSA" && info.Bits > 0 {
				bits = info.Bits
				return nil
			}
		}
		return nil
	})
	return bits, err
}

// baseLabel strips a trailing "/vN" version suffix.
func baseLabel(label string) string {
	name, _ := keyname.Split(label)
	return name
}

// DestroyVersion destroys (C_DestroyObject) every key object ref selects by
// object label, id and type: an AES key, or both halves of an RSA key pair.
// It succeeds when none is left, so a retry after a crash is harmless.
func (b *Backend) DestroyVersion(ctx context.Context, ref string) error {
	u, err := ParseURI(ref)
	if err != nil {
		return err
	}
	if u.Object == "" {
		return fmt.Errorf("%w: destroying a key needs object=LABEL", ErrInvalidURI)
	}
	t, err := b.token(ctx, u)
	if err != nil {
		return err
	}
	types := []ObjectType{TypeSecretKey, TypePrivateKey, TypePublicKey}
	if u.Type != "" {
		types = []ObjectType{u.Type}
	}
	return t.run(ctx, func(s session) error {
		defer t.st.pool.forgetHandles() // cached handles may name destroyed objects
		for _, typ := range types {
			hs, err := t.findObjects(s, typ, u.Object, u.ID, maxListObjects)
			if err != nil {
				return err
			}
			for _, h := range hs {
				if err := t.st.mod.ctx.DestroyObject(s.h, h); err != nil && !isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
					return callErr("C_DestroyObject", err)
				}
			}
		}
		return nil
	})
}

// forgetHandles drops the cached object handles of every generation.
func (p *pool) forgetHandles() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.handles)
}
