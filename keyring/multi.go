package keyring

import (
	"context"
	"errors"
	"fmt"

	"github.com/keystack/keystack/envelope"
)

// Multi combines keyrings (ESDK framework/multi-keyring.md): on
// encrypt the generator creates the data key and every child wraps that same
// key; on decrypt each keyring in turn is offered the EDKs until one unwraps
// a data key. Each keyring only tries EDKs that name its own keys.
type Multi struct {
	generator envelope.Keyring
	children  []envelope.Keyring
}

var _ envelope.Keyring = (*Multi)(nil)

// Keyrings returns the generator followed by the children, in a new slice.
func (k *Multi) Keyrings() []envelope.Keyring {
	return append([]envelope.Keyring{k.generator}, k.children...)
}

// NewMulti returns a keyring whose generator creates the data key and
// whose children also wrap it. generator must not be nil.
func NewMulti(generator envelope.Keyring, children ...envelope.Keyring) *Multi {
	return &Multi{generator: generator, children: children}
}

// OnEncrypt implements envelope.Keyring. Any child's failure fails the whole
// encryption: a message must be decryptable by every key the caller listed.
func (k *Multi) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	if err := k.generator.OnEncrypt(ctx, m); err != nil {
		return err
	}
	if m.DataKey == nil {
		return fmt.Errorf("%w: generator keyring produced no data key", ErrInvalidKey)
	}
	for _, c := range k.children {
		if err := c.OnEncrypt(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// OnDecrypt implements envelope.Keyring. When no keyring succeeds, the
// returned *envelope.NoDecryptKeyError lists every attempt of every keyring.
func (k *Multi) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	all := &envelope.NoDecryptKeyError{}
	for _, kr := range append([]envelope.Keyring{k.generator}, k.children...) {
		err := kr.OnDecrypt(ctx, m, edks)
		if err == nil && m.DataKey != nil {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		var nerr *envelope.NoDecryptKeyError
		switch {
		case errors.As(err, &nerr):
			all.Attempts = append(all.Attempts, nerr.Attempts...)
		case err != nil:
			all.Attempts = append(all.Attempts, envelope.KeyAttempt{ProviderID: "?", KeyName: fmt.Sprintf("%T", kr), Err: err})
		}
	}
	return all
}
