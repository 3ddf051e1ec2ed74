package keystore

import (
	"context"

	"github.com/keystack/keystack/policy"
)

// keyResource is the policy resource naming a key ("key/NAME").
func keyResource(name string) string { return "key/" + name }

// authorize asks the store's decision point whether its principal may do
// action on key name (version 0: the key as a whole; name "*" for every
// key, as ListKeys asks). Every public Store operation and every keyring
// the store hands out calls it first. Open always installs a decision
// point; only a Store built without Open or Init has none.
func (s *Store) authorize(ctx context.Context, action, name string, version int, ec map[string]string) error {
	if s.authz == nil {
		return nil
	}
	return s.authz.Authorize(ctx, policy.Request{
		Principal:         s.principal,
		Action:            action,
		Resource:          keyResource(name),
		KeyVersion:        version,
		EncryptionContext: ec,
	})
}
