package keystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keyring"
)

// refusedVersion stands in, on decrypt, for a local key version that may
// not decrypt (disabled, pending destruction, destroyed, or below the
// key's minimum decryption version). It never unwraps anything: when a
// message's EDK names the version, the attempt says which version and
// why, instead of the EDK going unclaimed as if the store did not know it.
type refusedVersion struct {
	match  func(envelope.EncryptedDataKey) bool
	reason error
}

// refusal returns the refusedVersion of v, or nil when v may decrypt or
// is not a local key version (external keys' EDKs name no version).
// kmsState is the key's state under the KMS API (kmsRefusal).
func refusal(name string, k *keyRecord, v *versionRecord, kmsState error) envelope.Keyring {
	if k.Backend != BackendLocal {
		return nil
	}
	var why string
	switch {
	case kmsState != nil:
		why = kmsState.Error()
	case !v.State.canDecrypt():
		why = string(v.State)
	case v.Version < k.MinDecrypt:
		why = fmt.Sprintf("below the key's minimum decryption version %d", k.MinDecrypt)
	default:
		return nil
	}
	ns, keyName := keyring.ProviderLocal, keyring.VersionedKeyName(name, v.Version)
	if k.Namespace != "" {
		ns, keyName = k.Namespace, k.KeyName
	}
	return &refusedVersion{
		match: func(e envelope.EncryptedDataKey) bool {
			return e.ProviderID == ns && keyring.DescribeEDK(e).KeyName == keyName
		},
		reason: fmt.Errorf("%w: version %d of %q is %s", ErrKeyDisabled, v.Version, name, why),
	}
}

// kmsRefusal says why key name may not be used when the key server's KMS
// API disabled it or scheduled its deletion (DisableKey,
// ScheduleKeyDeletion), and nil otherwise: such a key serves no
// operation, the CLI's and the SDK's included, as in AWS KMS.
func kmsRefusal(f *storeFile, name string) error {
	if f.Server == nil {
		return nil
	}
	switch st := f.Server.Keys[name].state(); st.State {
	case serverstore.Disabled:
		return errors.New("disabled through the KMS API (EnableKey enables it)")
	case serverstore.PendingDeletion:
		return fmt.Errorf("pending deletion on %s through the KMS API (CancelKeyDeletion keeps it)", st.DeletionDate.UTC().Format(time.RFC3339))
	}
	return nil
}

// OnEncrypt refuses: a refusedVersion only ever explains a decrypt.
func (r *refusedVersion) OnEncrypt(context.Context, *envelope.EncryptionMaterials) error {
	return r.reason
}

// OnDecrypt reports the version's state for each EDK that names it.
func (r *refusedVersion) OnDecrypt(_ context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	nerr := &envelope.NoDecryptKeyError{}
	if m.DataKey != nil {
		return nil
	}
	for _, e := range edks {
		if r.match(e) {
			nerr.Attempts = append(nerr.Attempts, envelope.KeyAttempt{ProviderID: e.ProviderID,
				KeyName: keyring.DescribeEDK(e).KeyName, Err: r.reason})
			break
		}
	}
	return nerr
}
