package client

import (
	"context"
	"fmt"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// legacyKeyring decrypts the data keys of messages written with a local
// keystore (keystack EDKs, not aws-kms ones) through the server's
// KeystackAdmin.DecryptDataKey, which decides keystack:Decrypt on the key
// version for the caller and audits it. It cannot encrypt.
type legacyKeyring struct {
	c    *Client
	keys []string // the only store keys tried; all when empty
}

// errLegacyEncrypt: legacyKeyring is only ever a decrypt keyring.
var errLegacyEncrypt = fmt.Errorf("%w: keystack EDKs are written by local keystores only", ErrInvalidConfig)

func (k legacyKeyring) OnEncrypt(context.Context, *envelope.EncryptionMaterials) error {
	return errLegacyEncrypt
}

type wireEDK struct {
	ProviderId               string
	ProviderInfo, Ciphertext []byte
}

func (k legacyKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	var send []wireEDK
	for _, e := range edks {
		if e.ProviderID != keyring.ProviderAWSKMS {
			send = append(send, wireEDK{ProviderId: e.ProviderID, ProviderInfo: e.ProviderInfo, Ciphertext: e.Ciphertext})
		}
	}
	if len(send) == 0 {
		return &envelope.NoDecryptKeyError{} // nothing of a local keystore in this message
	}
	var out struct{ Plaintext []byte }
	err := k.c.admin(ctx, "DecryptDataKey", map[string]any{"Suite": int(m.Suite), "EncryptionContext": m.EncryptionContext,
		"EncryptedDataKeys": send, "KeyIds": k.keys}, &out)
	if err == nil && len(out.Plaintext) != m.Suite.DataKeyLen() {
		err = fmt.Errorf("keystack server: DecryptDataKey: a data key of %d bytes, want %d", len(out.Plaintext), m.Suite.DataKeyLen())
	}
	if err != nil {
		return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{{ProviderID: send[0].ProviderId,
			KeyName: "keystack server (keystore keys)", Err: err}}}
	}
	m.DataKey = out.Plaintext
	return nil
}
