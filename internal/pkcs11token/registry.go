package pkcs11token

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// The process-wide registry: PKCS#11 allows one C_Initialize per module per
// process, and a login is shared by all of an application's sessions on a
// token, so modules and logged-in tokens are shared and reference counted.
var registry = struct {
	sync.Mutex
	modules map[string]*module
	tokens  map[string]*tokenState
}{modules: map[string]*module{}, tokens: map[string]*tokenState{}}

// module is a loaded and initialized PKCS#11 library.
type module struct {
	path    string
	ctx     *pkcs11.Ctx
	refs    int
	ownInit bool // we called C_Initialize, so we call C_Finalize
}

// tokenState is a token with its login and session pool.
type tokenState struct {
	key           string
	mod           *module
	slot          uint
	label, serial string
	pin           string
	pool          *pool
	refs          int
	rawRSA        atomic.Bool // the token lacks SHA-256 CKM_RSA_PKCS_OAEP; see RSAKeyring.unwrap
}

// acquireModule loads path or shares the loaded copy. registry must be locked.
func acquireModule(path string) (*module, error) {
	if m := registry.modules[path]; m != nil {
		m.refs++
		return m, nil
	}
	c := pkcs11.New(path)
	if c == nil {
		return nil, fmt.Errorf("%w: %s: cannot open the shared library", ErrModule, path)
	}
	m := &module{path: path, ctx: c, refs: 1, ownInit: true}
	if err := c.Initialize(); err != nil {
		var rv pkcs11.Error
		if !errors.As(err, &rv) || rv != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			c.Destroy()
			return nil, fmt.Errorf("%w: %s: %w", ErrModule, path, callErr("C_Initialize", err))
		}
		m.ownInit = false // someone else in the process initialized it
	}
	registry.modules[path] = m
	return m, nil
}

// release drops a reference; the last one finalizes and unloads the module.
// registry must be locked.
func (m *module) release() error {
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(registry.modules, m.path)
	var err error
	if m.ownInit {
		err = callErr("C_Finalize", m.ctx.Finalize())
	}
	m.ctx.Destroy()
	return err
}

// acquireToken returns the shared state of the token at slot, logging in
// with pin when it is new. For a token already logged in by this process,
// pin must equal the PIN it was opened with (compared in constant time),
// so a wrong PIN fails the same way whether or not the token is open.
// registry must be locked; acquireToken takes over the caller's module reference.
func acquireToken(m *module, slot uint, info pkcs11.TokenInfo, pin string, poolSize int) (*tokenState, error) {
	key := m.path + "\x00" + info.SerialNumber + "\x00" + info.Label
	if ts := registry.tokens[key]; ts != nil {
		_ = m.release() // ts already holds a reference
		if subtle.ConstantTimeCompare([]byte(pin), []byte(ts.pin)) != 1 {
			return nil, fmt.Errorf("%w (token %q is open in this process with another PIN)", ErrPINIncorrect, ts.label)
		}
		ts.refs++
		return ts, nil
	}
	if info.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0 {
		_ = m.release()
		return nil, fmt.Errorf("%w: token %q", ErrPINLocked, info.Label)
	}
	ts := &tokenState{key: key, mod: m, slot: slot, label: info.Label, serial: info.SerialNumber, pin: pin, refs: 1}
	ts.pool = newPool(m.ctx, slot, pin, poolSize)
	// Log in now, so that a wrong PIN fails Open rather than the first wrap.
	s, err := ts.pool.get(context.Background())
	if err != nil {
		_ = ts.pool.close()
		_ = m.release()
		return nil, err
	}
	ts.pool.put(s)
	registry.tokens[key] = ts
	return ts, nil
}

// release drops a reference; the last one closes the sessions (which logs
// the token out) and releases the module. registry must be locked.
func (ts *tokenState) release() error {
	ts.refs--
	if ts.refs > 0 {
		return nil
	}
	delete(registry.tokens, ts.key)
	return errors.Join(ts.pool.close(), ts.mod.release())
}
