package pkcs11token

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/miekg/pkcs11"
)

// countLogins wraps loginFn for the test and returns the attempt counter.
func countLogins(t *testing.T) *atomic.Int32 {
	var n atomic.Int32
	orig := loginFn
	loginFn = func(c *pkcs11.Ctx, h pkcs11.SessionHandle, pin string) error {
		n.Add(1)
		return orig(c, h, pin)
	}
	t.Cleanup(func() { loginFn = orig })
	return &n
}

// checkSessions asserts that no session is borrowed and that every session
// the pool counts as open is alive on the token (C_GetSessionInfo).
func checkSessions(t *testing.T, tok *Token, max int) {
	t.Helper()
	st := tok.Stats()
	if st.InUse != 0 || st.Open > max || st.Open < 1 {
		t.Fatalf("pool stats %+v: want 0 in use and 1..%d open", st, max)
	}
	p := tok.st.pool
	var live []session
	for len(p.idle) > 0 {
		s := <-p.idle
		if _, err := p.ctx.GetSessionInfo(s.h); err != nil {
			t.Errorf("idle session %d: C_GetSessionInfo: %v", s.h, err)
		}
		live = append(live, s)
	}
	for _, s := range live {
		p.idle <- s
	}
	if len(live) != st.Open {
		t.Fatalf("%d idle sessions, pool counts %d open", len(live), st.Open)
	}
}

func TestConcurrentWrapUnwrap(t *testing.T) {
	tok := openToken(t, tokenMain, Options{PoolSize: 8})
	kr := newAESKey(t, tok, "aes-concurrent")
	const workers, rounds = 16, 1000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: testContext}
				if err := kr.OnEncrypt(context.Background(), m); err != nil {
					errs <- err
					return
				}
				dk, err := unwrap(kr, m, testContext)
				if err != nil || !bytes.Equal(dk, m.DataKey) {
					errs <- errors.Join(errors.New("unwrap mismatch"), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkSessions(t, tok, 8)
}

func TestRecoverFromClosedSessions(t *testing.T) {
	tok := openToken(t, tokenMain, Options{})
	kr := newAESKey(t, tok, "aes-recover")
	logins := countLogins(t)
	em := wrap(t, kr, envelope.SuiteCommitted, testContext)
	// Close every session behind the pool's back; this also logs the token out.
	if err := tok.st.mod.ctx.CloseAllSessions(tok.st.slot); err != nil {
		t.Fatal(err)
	}
	if dk, err := unwrap(kr, em, testContext); err != nil || !bytes.Equal(dk, em.DataKey) {
		t.Fatalf("unwrap after C_CloseAllSessions: %v", err)
	}
	wrap(t, kr, envelope.SuiteCommitted, testContext)
	if st := tok.Stats(); st.Recoveries != 1 {
		t.Fatalf("%d recoveries, want 1", st.Recoveries)
	}
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d C_Login calls after recovery, want 1", n)
	}
	checkSessions(t, tok, defaultPoolSize)
}

func TestWrongPINOneLoginAttempt(t *testing.T) {
	requireSoftHSM(t)
	logins := countLogins(t)
	const wrongPIN = "98765-wrong"
	_, err := Open(context.Background(), tokenURI(tokenPIN), Options{Prompt: pinPrompt(wrongPIN)})
	if !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("Open with a wrong PIN: %v, want ErrPINIncorrect", err)
	}
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d C_Login attempts, want exactly 1", n)
	}
	msg := err.Error()
	if !strings.Contains(msg, "C_Login") || !strings.Contains(msg, "CKR_PIN_INCORRECT") || strings.Contains(msg, wrongPIN) {
		t.Fatalf("error %q: want C_Login and CKR_PIN_INCORRECT named, and no PIN", msg)
	}
	registry.Lock()
	leaked := len(registry.tokens) + len(registry.modules)
	registry.Unlock()
	if leaked != 0 {
		t.Fatalf("failed Open left %d registry entries", leaked)
	}
	// The right PIN still works: the token was not locked.
	tok := openToken(t, tokenPIN, Options{})
	if tok.Label() != tokenPIN {
		t.Fatalf("label %q", tok.Label())
	}
	// A second Open of the now logged-in token with a wrong PIN fails too,
	// without touching the token.
	if _, err := Open(context.Background(), tokenURI(tokenPIN), Options{Prompt: pinPrompt(wrongPIN)}); !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("wrong PIN on an open token: %v, want ErrPINIncorrect", err)
	}
	if n := logins.Load(); n != 2 {
		t.Fatalf("%d C_Login attempts in all, want 2", n)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, &URI{Token: "T", Module: "/nonexistent/libpkcs11.so"}, Options{Prompt: pinPrompt("x")})
	if !errors.Is(err, ErrModule) || !strings.Contains(err.Error(), "/nonexistent/libpkcs11.so") {
		t.Fatalf("missing module: %v, want ErrModule naming the path", err)
	}
	if _, err := Open(ctx, &URI{Token: "T"}, Options{}); !errors.Is(err, ErrModule) {
		t.Fatalf("no module path: %v, want ErrModule", err)
	}
	requireSoftHSM(t)
	if _, err := Open(ctx, tokenURI("no-such-token"), Options{Prompt: pinPrompt(testPIN)}); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("missing token: %v, want ErrTokenNotFound", err)
	}
	if _, err := Open(ctx, &URI{Module: softhsmModule}, Options{Prompt: pinPrompt(testPIN)}); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("ambiguous token: %v, want ErrTokenNotFound", err)
	}
	if _, err := Open(ctx, tokenURI(tokenMain), Options{}); !errors.Is(err, ErrNoPIN) {
		t.Fatalf("no PIN source: %v, want ErrNoPIN", err)
	}
}

func TestCloseFinalizes(t *testing.T) {
	sweepToken(t) // before a: its Token is closed again when a opens
	ctx := context.Background()
	a, err := Open(ctx, tokenURI(tokenMain), Options{Prompt: pinPrompt(testPIN)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, tokenURI(tokenMain), Options{Prompt: pinPrompt(testPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if a.st != b.st {
		t.Fatal("two Opens of one token do not share its login and pool")
	}
	kr := newAESKey(t, b, "aes-close")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wrap(t, kr, envelope.SuiteCommitted, nil) // a closed, b still holds the token
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	registry.Lock()
	n := len(registry.modules)
	registry.Unlock()
	if n != 0 {
		t.Fatalf("%d modules still loaded after the last Close", n)
	}
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted}
	if err := kr.OnEncrypt(ctx, m); !errors.Is(err, ErrClosed) {
		t.Fatalf("wrap after Close: %v, want ErrClosed", err)
	}
}
