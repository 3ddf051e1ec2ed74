package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// ErrVersionInUse matches the *VersionInUseError Retire returns while
// messages still depend on the version.
var ErrVersionInUse = errors.New("rotation: key version still in use")

// VersionInUseError says how many scanned messages still depend on a key
// version that was asked to retire.
type VersionInUseError struct {
	Key      string
	Version  int
	Messages int
}

func (e *VersionInUseError) Error() string {
	return fmt.Sprintf("%v: %d message(s) under key %q version %d; rewrap them first or force", ErrVersionInUse, e.Messages, e.Key, e.Version)
}

// Is makes errors.Is(err, ErrVersionInUse) true.
func (e *VersionInUseError) Is(target error) bool { return target == ErrVersionInUse }

// Retire schedules version of key name for destruction after waiting (see
// keystore.Store.ScheduleVersionDestruction) once no message under paths
// depends on it. It takes an inventory of paths first and returns it; while
// messages still name the version it refuses with a *VersionInUseError
// (ErrVersionInUse), unless force is set. Messages of an external version
// whose reference another live version shares do not depend on it alone,
// so they do not hold it back.
func Retire(ctx context.Context, st *keystore.Store, name string, version int, paths []string, force bool, waiting time.Duration) (*Inventory, error) {
	ki, err := st.DescribeKey(ctx, name)
	if err != nil {
		return nil, err
	}
	vi, ok := findVersion(ki, version)
	if !ok {
		return nil, fmt.Errorf("%w: %q has no version %d", keystore.ErrKeyNotFound, name, version)
	}
	inv, err := TakeInventory(ctx, paths...)
	if err != nil {
		return nil, err
	}
	if n := usesOf(inv, ki, vi); n > 0 && !force {
		return inv, &VersionInUseError{Key: name, Version: version, Messages: n}
	}
	reason := "retired: no message found under the scanned paths"
	if force {
		reason = "retired with force"
	}
	if _, err := st.ScheduleVersionDestruction(ctx, name, version, waiting, reason); err != nil {
		return inv, err
	}
	return inv, nil
}

func findVersion(ki *keystore.KeyInfo, v int) (keystore.VersionInfo, bool) {
	for _, vi := range ki.Versions {
		if vi.Version == v {
			return vi, true
		}
	}
	return keystore.VersionInfo{}, false
}

// usesOf counts the inventoried messages whose EDKs name version vi of ki,
// by the names each backend writes into EDKs.
func usesOf(inv *Inventory, ki *keystore.KeyInfo, vi keystore.VersionInfo) int {
	switch ki.Backend {
	case keystore.BackendLocal:
		if ki.Namespace != "" { // imported with fixed ESDK names: one version
			d := keyring.DescribeEDK(envelope.EncryptedDataKey{ProviderID: ki.Namespace, ProviderInfo: []byte(ki.KeyName)})
			return inv.Uses(d.Key, d.Version)
		}
		return inv.Uses(ki.Name, vi.Version)
	case keystore.BackendPKCS11:
		if sharedRef(ki, vi) {
			return 0
		}
		label := PKCS11Object(vi.Ref)
		d := keyring.DescribeEDK(envelope.EncryptedDataKey{ProviderID: keyring.ProviderPKCS11, ProviderInfo: []byte(label)})
		return inv.Uses(d.Key, d.Version)
	default: // aws-kms: EDKs name the ARN
		if sharedRef(ki, vi) {
			return 0
		}
		return inv.Uses(vi.Ref, 0)
	}
}

// sharedRef reports whether another version that still decrypts or may
// again (not pending destruction, not destroyed) uses vi's reference.
func sharedRef(ki *keystore.KeyInfo, vi keystore.VersionInfo) bool {
	for _, o := range ki.Versions {
		if o.Version != vi.Version && o.Ref == vi.Ref &&
			o.State != keystore.StatePendingDestruction && o.State != keystore.StateDestroyed {
			return true
		}
	}
	return false
}
