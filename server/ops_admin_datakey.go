package server

import (
	"errors"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/kmswire"
)

// maxDataKeyEDKs bounds the encrypted data keys of one DecryptDataKey.
const maxDataKeyEDKs = 64

type dataKeyEDK struct {
	ProviderId               string
	ProviderInfo, Ciphertext []byte
}

type decryptDataKeyReq struct {
	Suite             int
	EncryptionContext map[string]string
	EncryptedDataKeys []dataKeyEDK
	// KeyIds, when set, are the only store keys tried (the client's -k).
	KeyIds []string
}

// decryptDataKey unwraps the data key of a message written with the
// keystore itself (keystack EDKs, not aws-kms ones) through the store's
// decrypt keyring, which decides keystack:Decrypt on the key version for
// the caller, with the message's encryption context, and audits it: the
// keystack CLI in server mode reads messages made before the server.
func decryptDataKey(c *call, r *decryptDataKeyReq) (any, error) {
	suite := envelope.Suite(r.Suite)
	if r.Suite < 0 || r.Suite > 0xffff || !suite.Known() {
		return nil, kmswire.Errorf("ValidationException", "Suite is not a known algorithm suite ID")
	}
	if len(r.EncryptedDataKeys) == 0 || len(r.EncryptedDataKeys) > maxDataKeyEDKs {
		return nil, kmswire.Errorf("ValidationException", "EncryptedDataKeys must hold 1 to %d keys", maxDataKeyEDKs)
	}
	edks := make([]envelope.EncryptedDataKey, 0, len(r.EncryptedDataKeys))
	for _, e := range r.EncryptedDataKeys {
		if e.ProviderId == "aws-kms" {
			continue // the KMS Decrypt operation serves those
		}
		edks = append(edks, envelope.EncryptedDataKey{ProviderID: e.ProviderId, ProviderInfo: e.ProviderInfo, Ciphertext: e.Ciphertext})
	}
	ctx := c.plain()
	if len(r.KeyIds) > maxDataKeyEDKs {
		return nil, kmswire.Errorf("ValidationException", "KeyIds must hold at most %d keys", maxDataKeyEDKs)
	}
	kr, err := c.s.cfg.Store.DecryptKeyring(ctx, r.KeyIds...)
	if err != nil {
		return nil, err
	}
	m := &envelope.DecryptionMaterials{Suite: suite, EncryptionContext: r.EncryptionContext}
	if err := kr.OnDecrypt(ctx, m, edks); err != nil || m.DataKey == nil {
		return nil, dataKeyError(err)
	}
	return map[string]any{"Plaintext": m.DataKey}, nil
}

// dataKeyError is the KMS error of a failed unwrap: the most telling
// cause among the keys tried (audit failure, denial, disabled version,
// wrong context), else NotFoundException when no key of this keystore
// wraps the data key.
func dataKeyError(err error) error {
	var nerr *envelope.NoDecryptKeyError
	if errors.As(err, &nerr) {
		errs := make([]error, 0, len(nerr.Attempts))
		for _, a := range nerr.Attempts {
			errs = append(errs, a.Err)
		}
		err = errors.Join(errs...)
	}
	for _, m := range errorMap {
		if err != nil && errors.Is(err, m.err) {
			return kmswire.Errorf(m.code, "%s", m.msg)
		}
	}
	return kmswire.Errorf("NotFoundException", "no key of this server wraps these data keys")
}
