package pkcs11token

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// defaultPoolSize is the default bound on a token's open sessions.
const defaultPoolSize = 8

// maxPoolSize caps Options.PoolSize; tokens limit sessions too.
const maxPoolSize = 64

// loginFn performs C_Login. Tests wrap it to count login attempts.
var loginFn = func(c *pkcs11.Ctx, h pkcs11.SessionHandle, pin string) error {
	return c.Login(h, pkcs11.CKU_USER, pin)
}

// session is a borrowed session handle and the pool generation it was
// opened in; handles from an older generation were closed by a recovery.
type session struct {
	h   pkcs11.SessionHandle
	gen uint64
}

// pool is a token's bounded set of logged-in sessions. Every operation
// borrows one session for its duration; at most cap(slots) exist at once.
type pool struct {
	ctx  *pkcs11.Ctx
	slot uint
	pin  string

	slots chan struct{} // one token per borrowed session
	idle  chan session  // open sessions not borrowed

	mu         sync.Mutex // guards the fields below and serializes C_OpenSession with recovery
	gen        uint64
	open       int
	recoveries uint64
	handles    map[string]pkcs11.ObjectHandle // object handles found in generation gen

	loginMu sync.Mutex
	pinErr  error // set once the token rejects the PIN: never try it again
}

func newPool(c *pkcs11.Ctx, slot uint, pin string, size int) *pool {
	return &pool{
		ctx: c, slot: slot, pin: pin,
		slots:   make(chan struct{}, size),
		idle:    make(chan session, size),
		handles: map[string]pkcs11.ObjectHandle{},
	}
}

// run borrows a session and calls op with it. When op fails because the
// sessions or the login are gone (see recoverable), run drops every session
// of the pool, forgets cached object handles, and retries op exactly once
// on a fresh, logged-in session. PIN failures are never retried.
func (p *pool) run(ctx context.Context, op func(s session) error) error {
	for attempt := 0; ; attempt++ {
		gen := p.generation()
		s, err := p.get(ctx)
		if err == nil {
			err = op(s)
			gen = s.gen
			p.put(s)
		}
		if err == nil || attempt > 0 || !recoverable(err) {
			return err
		}
		p.reset(gen)
	}
}

func (p *pool) generation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// get borrows a session: an idle one of the current generation, or a new one.
func (p *pool) get(ctx context.Context) (session, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return session{}, ctx.Err()
	}
	for {
		select {
		case s := <-p.idle:
			if s.gen == p.generation() {
				return s, nil
			}
			p.drop(s, false) // closed by the recovery that bumped gen
			continue
		default:
		}
		s, err := p.openSession()
		if err != nil {
			<-p.slots
			return session{}, err
		}
		return s, nil
	}
}

// put returns a borrowed session. A session from an old generation is
// forgotten without C_CloseSession: its handle may now name a new session.
func (p *pool) put(s session) {
	if s.gen != p.generation() {
		p.drop(s, false)
	} else {
		p.idle <- s // cannot block: open sessions never exceed cap(idle)
	}
	<-p.slots
}

func (p *pool) openSession() (session, error) {
	p.mu.Lock()
	h, err := p.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		p.mu.Unlock()
		return session{}, callErr("C_OpenSession", err)
	}
	p.open++
	s := session{h: h, gen: p.gen}
	p.mu.Unlock()
	if err := p.ensureLogin(h); err != nil {
		p.drop(s, true)
		return session{}, err
	}
	return s, nil
}

// drop forgets an open session, closing it first when asked and still current.
func (p *pool) drop(s session, closeIt bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if closeIt && s.gen == p.gen {
		_ = p.ctx.CloseSession(s.h) // best effort: the session is being discarded
	}
	p.open--
}

// ensureLogin logs the token in unless the session already sees it logged
// in (a PKCS#11 login is shared by all of an application's sessions). It
// makes at most one C_Login attempt with a given PIN once it was rejected.
func (p *pool) ensureLogin(h pkcs11.SessionHandle) error {
	info, err := p.ctx.GetSessionInfo(h)
	if err != nil {
		return callErr("C_GetSessionInfo", err)
	}
	if info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS {
		return nil
	}
	p.loginMu.Lock()
	defer p.loginMu.Unlock()
	if p.pinErr != nil {
		return fmt.Errorf("%w (not retried)", p.pinErr)
	}
	err = callErr("C_Login", loginFn(p.ctx, h, p.pin))
	var ce *CallError
	if errors.As(err, &ce) && ce.Code == pkcs11.CKR_USER_ALREADY_LOGGED_IN {
		return nil
	}
	if errors.Is(err, ErrPINIncorrect) || errors.Is(err, ErrPINLocked) {
		p.pinErr = err
	}
	return err
}

// reset drops every session opened in generation gen (C_CloseAllSessions,
// which also logs the token out) and forgets cached object handles. It does
// nothing when another operation already recovered from the same failure.
func (p *pool) reset(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return
	}
	p.gen++
	p.recoveries++
	_ = p.ctx.CloseAllSessions(p.slot) // best effort: sessions may already be gone
	clear(p.handles)
	for {
		select {
		case <-p.idle:
			p.open--
		default:
			return
		}
	}
}

// close closes all sessions; the pool is not used afterwards.
func (p *pool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	clear(p.handles)
	for len(p.idle) > 0 {
		<-p.idle
		p.open--
	}
	return callErr("C_CloseAllSessions", p.ctx.CloseAllSessions(p.slot))
}

// handle returns the cached object handle for key in s's generation, or
// finds it with find and caches it.
func (p *pool) handle(s session, key string, find func() (pkcs11.ObjectHandle, error)) (pkcs11.ObjectHandle, error) {
	p.mu.Lock()
	h, ok := p.handles[key]
	ok = ok && s.gen == p.gen
	p.mu.Unlock()
	if ok {
		return h, nil
	}
	h, err := find()
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	if s.gen == p.gen {
		p.handles[key] = h
	}
	p.mu.Unlock()
	return h, nil
}

// PoolStats describes a token's session pool.
type PoolStats struct {
	Size       int    // maximum sessions
	Open       int    // sessions currently open
	InUse      int    // sessions currently borrowed
	Recoveries uint64 // times the pool dropped its sessions and reopened them
}

func (p *pool) stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Size: cap(p.slots), Open: p.open, InUse: len(p.slots), Recoveries: p.recoveries}
}
