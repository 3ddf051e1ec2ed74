package pkcs11token

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/miekg/pkcs11"
)

var testContext = map[string]string{"tenant": "acme", "purpose": "test"}

func TestAESRoundTripAndContextBinding(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	kr := newAESKey(t, tok, "aes-roundtrip")
	for _, suite := range []envelope.Suite{envelope.SuiteCommitted, envelope.Suite(0x0014), envelope.Suite(0x0046)} {
		em := wrap(t, kr, suite, testContext)
		edk := em.EncryptedDataKeys[0]
		if edk.ProviderID != keyring.ProviderPKCS11 || !bytes.HasPrefix(edk.ProviderInfo, []byte("aes-roundtrip")) {
			t.Fatalf("EDK provider %q info %q", edk.ProviderID, edk.ProviderInfo)
		}
		dk, err := unwrap(kr, em, testContext)
		if err != nil || !bytes.Equal(dk, em.DataKey) {
			t.Fatalf("%v: unwrap = %x, %v; want the data key", suite, dk, err)
		}
		wrong := map[string]string{"tenant": "evil", "purpose": "test"}
		dk, err = unwrap(kr, em, wrong)
		if !errors.Is(err, envelope.ErrNoDecryptKey) || !errors.Is(err, keyring.ErrUnwrapFailed) || dk != nil {
			t.Fatalf("%v: unwrap with wrong context = %x, %v; want ErrNoDecryptKey wrapping ErrUnwrapFailed", suite, dk, err)
		}
	}
}

func TestAESMatchesRawAESKeyring(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	ctx := context.Background()
	const label = "aes-extractable-test-only"
	if err := tok.generateAESKey(ctx, label, nil, aesKeySpec{extractable: true}); err != nil {
		t.Fatal(err)
	}
	hsmKR, err := tok.AESKeyring(ctx, label)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := keyring.NewRawAES(keyring.ProviderPKCS11, label, keyValue(t, tok, label))
	if err != nil {
		t.Fatal(err)
	}
	// HSM → raw.
	em := wrap(t, hsmKR, envelope.SuiteCommitted, testContext)
	info := em.EncryptedDataKeys[0].ProviderInfo[len(label):]
	if binary.BigEndian.Uint32(info) != 128 || binary.BigEndian.Uint32(info[4:]) != 12 || len(info) != 20 {
		t.Fatalf("provider info suffix %x: want tag bits 128, IV length 12, 12-byte IV", info)
	}
	if dk, err := unwrap(raw, em, testContext); err != nil || !bytes.Equal(dk, em.DataKey) {
		t.Fatalf("raw AES keyring unwrapping the HSM's EDK: %v", err)
	}
	// raw → HSM.
	em = wrap(t, raw, envelope.SuiteCommitted, testContext)
	if dk, err := unwrap(hsmKR, em, testContext); err != nil || !bytes.Equal(dk, em.DataKey) {
		t.Fatalf("HSM unwrapping the raw AES keyring's EDK: %v", err)
	}
}

// keyValue reads CKA_VALUE of an extractable test key.
func keyValue(t *testing.T, tok *Token, label string) []byte {
	t.Helper()
	var v []byte
	err := tok.run(context.Background(), func(s session) error {
		h, err := tok.findKey(s, TypeSecretKey, label, nil)
		if err != nil {
			return err
		}
		a, err := tok.st.mod.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return callErr("C_GetAttributeValue", err)
		}
		v = a[0].Value
		return nil
	})
	if err != nil || len(v) != 32 {
		t.Fatalf("reading test key value: %d bytes, %v", len(v), err)
	}
	return v
}

func TestGeneratedKeysStayOnToken(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	ctx := context.Background()
	newAESKey(t, tok, "aes-sensitive")
	rsaLabel := sharedRSALabel(t, tok)
	for _, c := range []struct {
		typ   ObjectType
		label string
	}{{TypeSecretKey, "aes-sensitive"}, {TypePrivateKey, rsaLabel}} {
		err := tok.run(ctx, func(s session) error {
			h, err := tok.findKey(s, c.typ, c.label, nil)
			if err != nil {
				return err
			}
			a, err := tok.st.mod.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil)})
			if err != nil {
				return err
			}
			if a[0].Value[0] != 1 || a[1].Value[0] != 0 || a[2].Value[0] != 1 {
				t.Errorf("%s: sensitive=%d extractable=%d token=%d; want 1 0 1", c.label, a[0].Value[0], a[1].Value[0], a[2].Value[0])
			}
			secret := uint(pkcs11.CKA_VALUE)
			if c.typ == TypePrivateKey {
				secret = pkcs11.CKA_PRIVATE_EXPONENT
			}
			_, err = tok.st.mod.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(secret, nil)})
			if !isCode(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
				t.Errorf("%s: reading the secret value gave %v, want CKR_ATTRIBUTE_SENSITIVE", c.label, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tok.GenerateAESKey(ctx, "aes-sensitive", nil); !errors.Is(err, ErrKeyExists) {
		t.Errorf("GenerateAESKey on a used label: %v, want ErrKeyExists", err)
	}
	if err := tok.GenerateRSAKeyPair(ctx, "rsa-small", nil, 2048); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("GenerateRSAKeyPair(2048): %v, want ErrInvalidKey", err)
	}
}

func TestRSARoundTripAndPublicKeyOnly(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	ctx := context.Background()
	label := sharedRSALabel(t, tok)
	kr, err := tok.RSAKeyring(ctx, label)
	if err != nil {
		t.Fatal(err)
	}
	if kr.PublicKey().N.BitLen() != 3072 {
		t.Fatalf("modulus of %d bits, want 3072", kr.PublicKey().N.BitLen())
	}
	em := wrap(t, kr, envelope.SuiteCommitted, testContext)
	if dk, err := unwrap(kr, em, testContext); err != nil || !bytes.Equal(dk, em.DataKey) {
		t.Fatalf("RSA round trip: %v", err)
	}
	// A machine without the HSM encrypts with the exported public key.
	pemBytes, err := kr.PublicKeyPEM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keyring.ParseRSAPublicKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := keyring.NewRawRSA(keyring.ProviderPKCS11, label, keyring.RSAOAEPSHA256, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	em = wrap(t, raw, envelope.Suite(0x0014), testContext)
	if dk, err := unwrap(kr, em, testContext); err != nil || !bytes.Equal(dk, em.DataKey) {
		t.Fatalf("HSM unwrapping a public-key-only EDK: %v", err)
	}
	// A corrupted ciphertext fails cleanly.
	em.EncryptedDataKeys[0].Ciphertext[10] ^= 1
	if _, err := unwrap(kr, em, testContext); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("corrupted RSA EDK: %v, want ErrNoDecryptKey", err)
	}
}

func TestVersionedKeyring(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	ctx := context.Background()
	newAESKey(t, tok, versionLabel("payments", 1))
	newAESKey(t, tok, versionLabel("payments", 2))
	v1, err := tok.Keyring(ctx, "payments", []int{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	old := wrap(t, v1, envelope.SuiteCommitted, testContext)
	v2, err := tok.Keyring(ctx, "payments", []int{1, 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if dk, err := unwrap(v2, old, testContext); err != nil || !bytes.Equal(dk, old.DataKey) {
		t.Fatalf("v1 EDK with keyring [1 2]: %v", err)
	}
	cur := wrap(t, v2, envelope.SuiteCommitted, testContext)
	if info := cur.EncryptedDataKeys[0].ProviderInfo; !bytes.HasPrefix(info, []byte("payments/v2")) {
		t.Fatalf("primary v2 wrote provider info %q", info)
	}
	if _, err := unwrap(v1, cur, testContext); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("v2 EDK with keyring [1]: %v, want ErrNoDecryptKey", err)
	}
	if _, err := tok.Keyring(ctx, "payments", []int{1, 3}, 1); !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "payments/v3") {
		t.Fatalf("missing version: %v, want ErrKeyNotFound naming payments/v3", err)
	}
	if _, err := tok.Keyring(ctx, "payments", []int{1}, 2); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("primary not listed: %v, want ErrInvalidKey", err)
	}
}

func TestMissingKeyLabel(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	ctx := context.Background()
	if _, err := tok.AESKeyring(ctx, "no-such-key"); !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), `"no-such-key"`) {
		t.Fatalf("AESKeyring: %v, want ErrKeyNotFound naming the label", err)
	}
	if _, err := tok.RSAKeyring(ctx, "no-such-key"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("RSAKeyring: %v, want ErrKeyNotFound", err)
	}
}

func TestListObjects(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	ctx := context.Background()
	newAESKey(t, tok, "aes-listed")
	rsaLabel := sharedRSALabel(t, tok)
	objs, err := tok.ListObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ObjectInfo{
		"aes-listed|secret-key": {Label: "aes-listed", ID: []byte("aes-listed"), Type: TypeSecretKey, KeyType: "AES", Bits: 256},
		rsaLabel + "|private":   {Label: rsaLabel, ID: []byte("rsa-1"), Type: TypePrivateKey, KeyType: "RSA", Bits: 3072},
		rsaLabel + "|public":    {Label: rsaLabel, ID: []byte("rsa-1"), Type: TypePublicKey, KeyType: "RSA", Bits: 3072},
	}
	for _, o := range objs {
		w, ok := want[o.Label+"|"+string(o.Type)]
		if !ok {
			continue
		}
		if o.KeyType != w.KeyType || o.Bits != w.Bits || !bytes.Equal(o.ID, w.ID) {
			t.Errorf("%s %s: got %+v, want %+v", o.Label, o.Type, o, w)
		}
		delete(want, o.Label+"|"+string(o.Type))
	}
	if len(want) != 0 {
		t.Errorf("ListObjects missed %v", want)
	}
}

func TestMultiKeyringWithLocalAES(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	hsmKR := newAESKey(t, tok, "aes-multi")
	local, err := keyring.NewRawAES("local", "backup", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	em := wrap(t, keyring.NewMulti(hsmKR, local), envelope.SuiteCommitted, testContext)
	if len(em.EncryptedDataKeys) != 2 {
		t.Fatalf("%d EDKs, want 2", len(em.EncryptedDataKeys))
	}
	for name, kr := range map[string]envelope.Keyring{"hsm": hsmKR, "local": local} {
		if dk, err := unwrap(kr, em, testContext); err != nil || !bytes.Equal(dk, em.DataKey) {
			t.Errorf("%s alone: %v", name, err)
		}
	}
}

func TestBackend(t *testing.T) {
	requireSoftHSM(t)
	tok := openToken(t, tokenMain, Options{})
	newAESKey(t, tok, "svc/v1")
	rsaLabel := sharedRSALabel(t, tok)
	b := NewBackend(Options{Prompt: pinPrompt(testPIN)})
	defer b.Close()
	ctx := context.Background()
	for _, ref := range []string{
		"pkcs11:token=T;object=svc%2Fv1;type=secret?module-path=" + softhsmModule,
		"pkcs11:token=T;object=" + rsaLabel + "?module-path=" + softhsmModule,
	} {
		kr, err := b.Keyring(ctx, ref)
		if err != nil {
			t.Fatalf("Keyring(%s): %v", ref, err)
		}
		em := wrap(t, kr, envelope.SuiteCommitted, testContext)
		if dk, err := unwrap(kr, em, testContext); err != nil || !bytes.Equal(dk, em.DataKey) {
			t.Fatalf("%s round trip: %v", ref, err)
		}
	}
	if _, err := b.Keyring(ctx, "pkcs11:token=T?module-path="+softhsmModule); !errors.Is(err, ErrInvalidURI) {
		t.Fatalf("no object=: %v, want ErrInvalidURI", err)
	}
	if _, err := b.Keyring(ctx, "pkcs11:token=T;object=absent?module-path="+softhsmModule); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("absent object: %v, want ErrKeyNotFound", err)
	}
}
