package gate

import (
	"context"
	"errors"

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
func (g *Gate) AuthorizeKey(ctx context.Context, action, name string, version int, ec map[string]string) error {
	return g.Authorize(ctx, g.keyRequest(action, name, version, ec))
}

// AuthorizeKeyActions is AuthorizeKey for several actions one operation
// needs together, decided in order (each only if those before are
// allowed) with one audit write when the decision point can
// (AuthorizeAll).
func (g *Gate) AuthorizeKeyActions(ctx context.Context, actions []string, name string, version int, ec map[string]string) error {
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

// IsDenial reports whether err is a policy denial that was recorded: an
// audit failure is not, and must refuse the whole operation.
func IsDenial(err error) bool {
	return errors.Is(err, policy.ErrAccessDenied) && !errors.Is(err, policy.ErrAuditFailed)
}

// Key describes the one key (version) a guarded keyring stands for.
type Key struct {
	// Name is the store key's name, or "BACKEND:REF" for a key outside the
	// store; requests name the resource key/Name.
	Name string
	// Version is the key version; 0 for external keys, whose EDKs name no
	// version.
	Version int
	// Rewrap makes decryption authorize keystack:ReWrap instead of
	// keystack:Decrypt (a header-only rewrap).
	Rewrap bool
	// Match reports whether the wrapped keyring would try an EDK; nil
	// means any EDK.
	Match func(envelope.EncryptedDataKey) bool
	// Provider and Label name the key in a denial's envelope.KeyAttempt:
	// its ESDK provider ID or backend, and NAME/vN (never a reference that
	// may carry secrets).
	Provider, Label string
}

// Keyring returns inner behind the gate: every use of key k is authorized
// for the message's encryption context before inner acts, so that
// conditions on the context are decided per message.
func (g *Gate) Keyring(inner envelope.Keyring, k Key) envelope.Keyring {
	return &guardedKeyring{g: g, inner: inner, k: k}
}

type guardedKeyring struct {
	g     *Gate
	inner envelope.Keyring
	k     Key
}

// OnEncrypt authorizes keystack:GenerateDataKey when this key generates the
// data key, and keystack:Encrypt always, for the message's encryption
// context, then wraps.
func (r *guardedKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	var err error
	if m.DataKey == nil {
		err = r.g.AuthorizeKeyActions(ctx, []string{policy.ActionGenerateDataKey, policy.ActionEncrypt}, r.k.Name, r.k.Version, m.EncryptionContext)
	} else {
		err = r.g.AuthorizeKey(ctx, policy.ActionEncrypt, r.k.Name, r.k.Version, m.EncryptionContext)
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
		if err := r.g.AuthorizeKey(ctx, action, r.k.Name, r.k.Version, m.EncryptionContext); err != nil {
			if !IsDenial(err) {
				return err
			}
			// A denial is this key's attempt, named like the key, so that
			// a MultiKeyring reports it among the keys it tried.
			return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{{ProviderID: r.k.Provider, KeyName: r.k.Label, Err: err}}}
		}
	}
	return r.inner.OnDecrypt(ctx, m, mine)
}

// KeyOf returns the key kr guards, if kr is a keyring of Gate.Keyring.
func KeyOf(kr envelope.Keyring) (Key, bool) {
	if r, ok := kr.(*guardedKeyring); ok {
		return r.k, true
	}
	return Key{}, false
}
