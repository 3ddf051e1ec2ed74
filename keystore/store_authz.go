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
	s.followPolicy()
	return s.authz.Authorize(ctx, scope(ctx, s.keyRequest(action, name, version, ec)))
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

// multiAuthorizer is an Authorizer that decides several requests at once
// (policy.Engine.AuthorizeAll), recording them with one audit write.
type multiAuthorizer interface {
	AuthorizeAll(ctx context.Context, reqs ...policy.Request) error
}

// authorize2 is authorize for two actions one operation needs together,
// decided in order as two authorize calls would be (the second only if the
// first is allowed), with one audit write when the decision point can.
func (s *Store) authorize2(ctx context.Context, first, second, name string, version int, ec map[string]string) error {
	ma, ok := s.authz.(multiAuthorizer)
	if !ok {
		if err := s.authorize(ctx, first, name, version, ec); err != nil {
			return err
		}
		return s.authorize(ctx, second, name, version, ec)
	}
	s.followPolicy()
	r1 := scope(ctx, s.keyRequest(first, name, version, ec))
	r2 := r1
	r2.Action = second
	return ma.AuthorizeAll(ctx, r1, r2)
}
