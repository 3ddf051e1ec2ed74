package keyring

import (
	"context"
	"errors"

	"github.com/keystack/keystack/envelope"
)

// ErrNoMatchingEDK is recorded when a message holds no encrypted data key
// for a keyring's key.
var ErrNoMatchingEDK = errors.New("keyring: no encrypted data key for this key")

// DecryptFirst is the OnDecrypt of a keyring holding one key
// (framework/keyring-interface.md): unless m already has a data key, it
// tries the EDKs in order with unwrap, which reports ok false for an EDK
// not for this key (skipped silently), else the data key or why it could
// not be had, and keeps the first data key of the suite's length. Every failure is recorded with attempt, and one attempt says so
// when no EDK was for this key; the result is then an
// *envelope.NoDecryptKeyError. If ctx ends during an unwrap, it returns
// ctx's error.
func DecryptFirst(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey,
	attempt func(error) envelope.KeyAttempt, unwrap func(envelope.EncryptedDataKey) (dataKey []byte, ok bool, err error)) error {
	if m.DataKey != nil {
		return nil
	}
	nerr := &envelope.NoDecryptKeyError{}
	for _, edk := range edks {
		dk, ok, err := unwrap(edk)
		if !ok {
			continue
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err == nil && len(dk) != m.Suite.DataKeyLen() {
			err = ErrUnwrapFailed
		}
		if err != nil {
			nerr.Attempts = append(nerr.Attempts, attempt(err))
			continue
		}
		m.DataKey = dk
		return nil
	}
	if len(nerr.Attempts) == 0 {
		nerr.Attempts = append(nerr.Attempts, attempt(ErrNoMatchingEDK))
	}
	return nerr
}
