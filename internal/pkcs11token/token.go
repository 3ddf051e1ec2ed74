package pkcs11token

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/miekg/pkcs11"

	"github.com/keystack/keystack/keyring"
)

// Options configures how a token is opened.
type Options struct {
	// ModulePath is the PKCS#11 library used when the URI has no module-path.
	ModulePath string
	// Namespace is the provider ID written into encrypted data keys
	// (ESDK raw keyring namespace). Default keyring.ProviderPKCS11.
	Namespace string
	// PoolSize bounds the token's open sessions (default defaultPoolSize,
	// at most 64). It takes effect when the process first opens the token;
	// later Opens of the same token share the first one's pool.
	PoolSize int
	// Prompt asks for the PIN when neither the URI's pin-source nor
	// KEYSTACK_PKCS11_PIN supplies it.
	Prompt PINPrompt
}

func (o Options) namespace() string {
	if o.Namespace == "" {
		return keyring.ProviderPKCS11
	}
	return o.Namespace
}

// Token is an open, logged-in PKCS#11 token. It is safe for concurrent use.
// Tokens opened on the same module and token share one module load, one
// login and one session pool for the whole process; Close releases them.
type Token struct {
	st        *tokenState
	namespace string
	closed    atomic.Bool
}

// Open loads the URI's module (once per process), selects the single token
// matching its token, serial and slot-id attributes, and logs in with the
// PIN from the URI's pin-source, KEYSTACK_PKCS11_PIN or opts.Prompt, in that
// order. A PIN the token rejects fails with ErrPINIncorrect after exactly one
// C_Login attempt; it is never retried.
func Open(ctx context.Context, u *URI, opts Options) (*Token, error) {
	path := u.Module
	if path == "" {
		path = opts.ModulePath
	}
	if path == "" {
		return nil, fmt.Errorf("%w: no module-path in the URI or options", ErrModule)
	}
	size := opts.PoolSize
	if size <= 0 {
		size = defaultPoolSize
	}
	size = min(size, maxPoolSize)
	registry.Lock()
	defer registry.Unlock()
	m, err := acquireModule(path)
	if err != nil {
		return nil, err
	}
	slot, info, err := findToken(m.ctx, u)
	if err != nil {
		_ = m.release()
		return nil, err
	}
	pin, err := resolvePIN(ctx, u, info.Label, opts.Prompt)
	if err != nil {
		_ = m.release()
		return nil, err
	}
	st, err := acquireToken(m, slot, info, pin, size)
	if err != nil {
		return nil, err
	}
	return &Token{st: st, namespace: opts.namespace()}, nil
}

// findToken returns the one initialized token that u selects.
func findToken(c *pkcs11.Ctx, u *URI) (uint, pkcs11.TokenInfo, error) {
	slots, err := c.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, callErr("C_GetSlotList", err)
	}
	var found []uint
	var info pkcs11.TokenInfo
	for _, id := range slots {
		if u.SlotID != nil && *u.SlotID != id {
			continue
		}
		ti, err := c.GetTokenInfo(id)
		if err != nil {
			return 0, info, callErr("C_GetTokenInfo", err)
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 ||
			u.Token != "" && ti.Label != u.Token || u.Serial != "" && ti.SerialNumber != u.Serial {
			continue
		}
		found, info = append(found, id), ti
	}
	sel := (&URI{Token: u.Token, Serial: u.Serial, SlotID: u.SlotID}).String()
	switch len(found) {
	case 0:
		return 0, info, fmt.Errorf("%w: no initialized token matches %s", ErrTokenNotFound, sel)
	case 1:
		return found[0], info, nil
	}
	return 0, info, fmt.Errorf("%w: %d tokens match %s; add token=, serial= or slot-id=", ErrTokenNotFound, len(found), sel)
}

// Label returns the token's label.
func (t *Token) Label() string { return t.st.label }

// Stats reports the token's session pool, shared by all its Tokens.
func (t *Token) Stats() PoolStats { return t.st.pool.stats() }

// Close releases the token. The last Close in the process closes its
// sessions (logging it out) and, when no token of the module remains open,
// calls C_Finalize and unloads the module. Close is idempotent; keyrings
// made from t fail with ErrClosed afterwards.
func (t *Token) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	registry.Lock()
	defer registry.Unlock()
	return t.st.release()
}

// run runs op on a pooled session, recovering once from lost sessions.
func (t *Token) run(ctx context.Context, op func(s session) error) error {
	if t.closed.Load() {
		return ErrClosed
	}
	return t.st.pool.run(ctx, op)
}
