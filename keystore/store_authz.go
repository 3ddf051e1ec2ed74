package keystore

import (
	"context"

	"github.com/keystack/keystack/policy"
)

// keyResource is the policy resource naming a key ("key/NAME").
func keyResource(name string) string { return "key/" + name }

// authorize asks the store's gate whether its principal (or the Caller in
// ctx) may do action on key name (version 0: the key as a whole; name "*"
// for every key, as ListKeys asks). Every public Store operation and every
// keyring the store hands out calls it first. Open always installs a
// gate; only a Store built without Open or Init has none.
func (s *Store) authorize(ctx context.Context, action, name string, version int, ec map[string]string) error {
	if s.gate == nil {
		return nil
	}
	return s.gate.Authorize(ctx, s.keyRequest(action, name, version, ec))
}

func (s *Store) keyRequest(action, name string, version int, ec map[string]string) policy.Request {
	return policy.Request{
		Principal:         s.principal,
		Action:            action,
		Resource:          keyResource(name),
		KeyVersion:        version,
		EncryptionContext: ec,
	}
}

// authorize2 is authorize for two actions one operation needs together,
// decided in order as two authorize calls would be (the second only if the
// first is allowed), with one audit write when the decision point can.
func (s *Store) authorize2(ctx context.Context, first, second, name string, version int, ec map[string]string) error {
	if s.gate == nil {
		return nil
	}
	r1 := s.keyRequest(first, name, version, ec)
	r2 := r1
	r2.Action = second
	return s.gate.AuthorizeAll(ctx, r1, r2)
}

// authorizeResource is authorize for the resources that are no key
// ("server", the key server's own state).
func (s *Store) authorizeResource(ctx context.Context, action, resource string) error {
	if s.gate == nil {
		return nil
	}
	return s.gate.Authorize(ctx, policy.Request{Principal: s.principal, Action: action, Resource: resource})
}
