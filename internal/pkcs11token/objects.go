package pkcs11token

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// maxListObjects bounds ListObjects.
const maxListObjects = 10000

// classOf maps URI object types to CKO_ classes.
var classOf = map[ObjectType]uint{
	TypeSecretKey:  pkcs11.CKO_SECRET_KEY,
	TypePrivateKey: pkcs11.CKO_PRIVATE_KEY,
	TypePublicKey:  pkcs11.CKO_PUBLIC_KEY,
}

// findKey returns the handle of the single object of class typ with the
// label (and id, when not empty), caching it for the pool generation.
func (t *Token) findKey(s session, typ ObjectType, label string, id []byte) (pkcs11.ObjectHandle, error) {
	key := fmt.Sprintf("%s|%q|%x", typ, label, id)
	return t.st.pool.handle(s, key, func() (pkcs11.ObjectHandle, error) {
		hs, err := t.findObjects(s, typ, label, id, 2)
		if err != nil {
			return 0, err
		}
		switch len(hs) {
		case 0:
			return 0, fmt.Errorf("%w: no %s key labeled %q on token %q", ErrKeyNotFound, typ, label, t.st.label)
		case 1:
			return hs[0], nil
		}
		return 0, fmt.Errorf("%w: several %s keys labeled %q on token %q; give id= too", ErrKeyNotFound, typ, label, t.st.label)
	})
}

// findObjects returns up to max handles of objects matching the template.
func (t *Token) findObjects(s session, typ ObjectType, label string, id []byte, max int) ([]pkcs11.ObjectHandle, error) {
	c := t.st.mod.ctx
	var tmpl []*pkcs11.Attribute
	if typ != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_CLASS, classOf[typ]))
	}
	if label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	if len(id) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	if err := c.FindObjectsInit(s.h, tmpl); err != nil {
		return nil, callErr("C_FindObjectsInit", err)
	}
	var all []pkcs11.ObjectHandle
	var ferr error
	for len(all) < max {
		hs, _, err := c.FindObjects(s.h, min(max-len(all), 100))
		if err != nil {
			ferr = callErr("C_FindObjects", err)
			break
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if err := c.FindObjectsFinal(s.h); err != nil && ferr == nil {
		ferr = callErr("C_FindObjectsFinal", err)
	}
	return all, ferr
}

// checkLabelFree fails with ErrKeyExists when any key object has label.
func (t *Token) checkLabelFree(s session, label string) error {
	if label == "" {
		return fmt.Errorf("%w: empty label", ErrInvalidKey)
	}
	for _, typ := range []ObjectType{TypeSecretKey, TypePrivateKey, TypePublicKey} {
		hs, err := t.findObjects(s, typ, label, nil, 1)
		if err != nil {
			return err
		}
		if len(hs) > 0 {
			return fmt.Errorf("%w: %q on token %q", ErrKeyExists, label, t.st.label)
		}
	}
	return nil
}

// aesKeySpec is the template of a generated AES key. Only tests make
// extractable keys, to compare the token with the raw AES keyring.
type aesKeySpec struct {
	extractable bool
}

// GenerateAESKey creates a 256-bit AES key on the token that never leaves
// it (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true; CKA_EXTRACTABLE false),
// usable for CKM_AES_GCM encrypt and decrypt. It fails with ErrKeyExists
// when a key object already has the label.
func (t *Token) GenerateAESKey(ctx context.Context, label string, id []byte) error {
	return t.generateAESKey(ctx, label, id, aesKeySpec{})
}

func (t *Token) generateAESKey(ctx context.Context, label string, id []byte, spec aesKeySpec) error {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, !spec.extractable),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, spec.extractable),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
	}
	if len(id) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	return t.run(ctx, func(s session) error {
		if err := t.checkLabelFree(s, label); err != nil {
			return err
		}
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}
		_, err := t.st.mod.ctx.GenerateKey(s.h, mech, tmpl)
		return callErr("C_GenerateKey", err)
	})
}

// GenerateRSAKeyPair creates an RSA key pair of 3072 or 4096 bits on the
// token for RSA-OAEP: the private key never leaves it (CKA_SENSITIVE true,
// CKA_EXTRACTABLE false), the public key can be exported with
// [RSAKeyring.PublicKeyPEM]. Both objects get label and id.
func (t *Token) GenerateRSAKeyPair(ctx context.Context, label string, id []byte, bits int) error {
	if bits != 3072 && bits != 4096 {
		return fmt.Errorf("%w: RSA keys must be 3072 or 4096 bits, not %d", ErrInvalidKey, bits)
	}
	common := func(priv bool) []*pkcs11.Attribute {
		a := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, priv),
		}
		if len(id) > 0 {
			a = append(a, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
		}
		return a
	}
	pub := append(common(false),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false))
	priv := append(common(true),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false))
	return t.run(ctx, func(s session) error {
		if err := t.checkLabelFree(s, label); err != nil {
			return err
		}
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
		_, _, err := t.st.mod.ctx.GenerateKeyPair(s.h, mech, pub, priv)
		return callErr("C_GenerateKeyPair", err)
	})
}

// ObjectInfo describes a key object on a token. It never holds key values.
type ObjectInfo struct {
	Label   string
	ID      []byte
	Type    ObjectType // secret-key, private or public
	KeyType string     // "AES", "RSA" or "0x..." for others
	Bits    int        // key size, 0 when the token does not say
}

// ListObjects lists the token's key objects (secret, private and public
// keys), reading only non-secret attributes: label, ID, key type, size.
func (t *Token) ListObjects(ctx context.Context) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := t.run(ctx, func(s session) error {
		out = out[:0]
		for _, typ := range []ObjectType{TypeSecretKey, TypePrivateKey, TypePublicKey} {
			hs, err := t.findObjects(s, typ, "", nil, maxListObjects-len(out))
			if err != nil {
				return err
			}
			for _, h := range hs {
				info, err := t.describe(s, h, typ)
				if err != nil {
					return err
				}
				out = append(out, info)
			}
		}
		return nil
	})
	return out, err
}

func (t *Token) describe(s session, h pkcs11.ObjectHandle, typ ObjectType) (ObjectInfo, error) {
	c := t.st.mod.ctx
	attrs, err := c.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
		pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
	})
	if err != nil {
		return ObjectInfo{}, callErr("C_GetAttributeValue", err)
	}
	info := ObjectInfo{Label: string(attrs[0].Value), ID: attrs[1].Value, Type: typ}
	kt := bytesToUint(attrs[2].Value)
	switch kt {
	case pkcs11.CKK_AES:
		info.KeyType = "AES"
	case pkcs11.CKK_RSA:
		info.KeyType = "RSA"
	default:
		info.KeyType = fmt.Sprintf("0x%X", kt)
	}
	// Size attributes differ per class; a token may refuse one, which only
	// leaves Bits at 0.
	sizeAttr := pkcs11.CKA_MODULUS
	if typ == TypeSecretKey {
		sizeAttr = pkcs11.CKA_VALUE_LEN
	}
	if a, err := c.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(uint(sizeAttr), nil)}); err == nil {
		if typ == TypeSecretKey {
			info.Bits = int(bytesToUint(a[0].Value)) * 8
		} else {
			info.Bits = new(big.Int).SetBytes(a[0].Value).BitLen()
		}
	} else if !isCode(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID) {
		return info, callErr("C_GetAttributeValue", err)
	}
	return info, nil
}

// bytesToUint decodes a CK_ULONG attribute, which is in host byte order.
func bytesToUint(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return 0
}

func isCode(err error, codes ...uint) bool {
	var rv pkcs11.Error
	if !errors.As(err, &rv) {
		return false
	}
	for _, c := range codes {
		if uint(rv) == c {
			return true
		}
	}
	return false
}
