package gate

import (
	"context"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/policy"
)

// keyResource is the policy resource naming a key ("key/NAME").
func keyResource(name string) string { return "key/" + name }

// keyRequest is the request for action on key name (version 0: the key as
// a whole; name "*" for every key) with the message's encryption context:
// the one place a key request is built. Authorize then scopes it to the
// Caller in ctx, and the engine completes it (policyengine.Engine), as it
// completes a simulated one.
func (g *Gate) keyRequest(action, name string, version int, ec map[string]string) policy.Request {
	return policy.Request{Principal: g.principal, Action: action, Resource: keyResource(name),
		KeyVersion: version, EncryptionContext: ec}
}

// AuthorizeKey decides whether the store's principal (or the Caller in
// ctx) may do action on key name, and records the decision (Authorize).
func (g *Gate) authorizeKey(ctx context.Context, action, name string, version int, ec map[string]string) error {
	return g.authorize(ctx, g.keyRequest(action, name, version, ec))
}

// AuthorizeKeyActions is AuthorizeKey for several actions one operation
// needs together, decided in order (each only if those before are
// allowed) with one audit write when the decision point can
// (AuthorizeAll).
func (g *Gate) authorizeKeyActions(ctx context.Context, actions []string, name string, version int, ec map[string]string) error {
	reqs := make([]policy.Request, len(actions))
	for i, a := range actions {
		if i == 0 {
			reqs[i] = g.keyRequest(a, name, version, ec)
		} else {
			reqs[i] = reqs[0] // the resource is built once
			reqs[i].Action = a
		}
	}
	return g.authorizeAll(ctx, reqs)
}

// Keyring returns inner behind the gate: every use of key k is authorized
// for the message's encryption context before inner acts, so that
// conditions on the context are decided per message.
func (g *Gate) keyring(inner envelope.Keyring, k gatewire.Key) envelope.Keyring {
	return &guardedKeyring{g: g, inner: inner, k: k}
}

type guardedKeyring struct {
	g     *Gate
	inner envelope.Keyring
	k     gatewire.Key
}

// OnEncrypt authorizes keystack:GenerateDataKey when this key generates the
// data key, and keystack:Encrypt always, for the message's encryption
// context, then wraps.
func (r *guardedKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	var err error
	if m.DataKey == nil {
		err = r.g.authorizeKeyActions(ctx, []string{policy.ActionGenerateDataKey, policy.ActionEncrypt}, r.k.Name, r.k.Version, m.EncryptionContext)
	} else {
		err = r.g.authorizeKey(ctx, policy.ActionEncrypt, r.k.Name, r.k.Version, m.EncryptionContext)
	}
	if err != nil {
		return err
	}
	return r.inner.OnEncrypt(ctx, m)
}

// OnDecrypt authorizes keystack:Decrypt (or ReWrap) for this key version
// before anything is unwrapped, and only when the message holds an EDK of
// this key; the wrapped keyring then sees only those EDKs.
func (r *guardedKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	mine := edks
	if r.k.Match != nil {
		mine = make([]envelope.EncryptedDataKey, 0, 1)
		for _, e := range edks {
			if r.k.Match(e) {
				mine = append(mine, e)
			}
		}
	}
	if len(mine) > 0 {
		action := policy.ActionDecrypt
		if r.k.Rewrap {
			action = policy.ActionReWrap
		}
		if err := r.g.authorizeKey(ctx, action, r.k.Name, r.k.Version, m.EncryptionContext); err != nil {
			if !gatewire.IsDenial(err) {
				return err
			}
			// A denial is this key's attempt, named like the key, so that
			// a MultiKeyring reports it among the keys it tried.
			return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{{ProviderID: r.k.Provider, KeyName: r.k.Label, Err: err}}}
		}
	}
	return r.inner.OnDecrypt(ctx, m, mine)
}
