package pkcs11token

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring/keyringtest"
)

var conformanceKeys atomic.Int32

func TestConformanceAES(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	newKR := func(t *testing.T) envelope.Keyring {
		return newAESKey(t, tok, fmt.Sprintf("conformance-aes-%d", conformanceKeys.Add(1)))
	}
	keyringtest.RunWithOptions(t, newKR, keyringtest.Options{OtherKey: newKR})
}

func TestConformanceRSA(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	kr, err := tok.RSAKeyring(context.Background(), sharedRSALabel(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	// Like the ESDK raw RSA keyring, RSA-OAEP EDKs do not bind the context.
	// OtherKey reuses the one RSA key pair under another namespace: RSA key
	// generation is too slow for a test, and a different provider ID is a
	// different master key to the keyring contract.
	other := &RSAKeyring{tok: tok, namespace: "conformance-other", label: kr.label, pub: kr.pub, hasPriv: true}
	keyringtest.RunWithOptions(t, func(*testing.T) envelope.Keyring { return kr }, keyringtest.Options{
		IgnoresContext: true,
		OtherKey:       func(*testing.T) envelope.Keyring { return other },
	})
}
