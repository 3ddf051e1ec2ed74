package keystore

import (
	"context"

	"github.com/keystack/keystack/policy"
)

// authorize asks the store's gate whether its principal (or the Caller in
// ctx) may do action on key name (version 0: the key as a whole; name "*"
// for every key, as ListKeys asks). Every public Store operation and every
// keyring the store hands out calls it first. Open always installs a
// gate; only a Store built without Open or Init has none.
func (s *Store) authorize(ctx context.Context, action, name string, version int, ec map[string]string) error {
	if s.enf == nil {
		return nil
	}
	return s.enf.AuthorizeKey(ctx, action, name, version, ec)
}

// authorize2 is authorize for two actions one operation needs together,
// decided in order as two authorize calls would be (the second only if the
// first is allowed), with one audit write when the decision point can.
func (s *Store) authorize2(ctx context.Context, first, second, name string, version int, ec map[string]string) error {
	if s.enf == nil {
		return nil
	}
	return s.enf.AuthorizeKeyActions(ctx, []string{first, second}, name, version, ec)
}

// authorizeResource is authorize for the resources that are no key
// ("server", the key server's own state).
func (s *Store) authorizeResource(ctx context.Context, action, resource string) error {
	if s.enf == nil {
		return nil
	}
	return s.enf.Authorize(ctx, policy.Request{Principal: s.principal, Action: action, Resource: resource})
}
