package keystore

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// switchAuthorizer allows until denied is set, and counts its decisions.
type switchAuthorizer struct {
	mu        sync.Mutex
	denied    bool
	decisions int
}

func (a *switchAuthorizer) Authorize(_ context.Context, req policy.Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.decisions++
	if a.denied {
		return &policy.DeniedError{Action: req.Action, Resource: req.Resource, Principal: req.Principal}
	}
	return nil
}

// TestStoreCacheStaysBehindPolicy: with a data-key cache, every message
// is still authorized, and a cache hit after a denial is refused.
func TestStoreCacheStaysBehindPolicy(t *testing.T) {
	ctx := context.Background()
	dir := newTestStore(t).Dir()
	authz := &switchAuthorizer{}
	s, err := Open(dir, OpenOptions{
		Now: fixedNow, Authorizer: authz, Passphrase: func() ([]byte, error) { return []byte(testPass), nil },
		Cache: &keyring.CacheOptions{MaxAge: time.Hour, MaxMessages: 100, Now: fixedNow},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "k")
	enc, err := s.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for range 3 {
		msg, err := envelope.EncryptBytes(ctx, []byte("hello"), enc, envelope.EncryptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, msg)
	}
	h0, _ := envelope.Inspect(bytes.NewReader(msgs[0]), envelope.InspectOptions{})
	h2, _ := envelope.Inspect(bytes.NewReader(msgs[2]), envelope.InspectOptions{})
	if !bytes.Equal(h0.EncryptedDataKeys[0].Ciphertext, h2.EncryptedDataKeys[0].Ciphertext) {
		t.Fatal("the cache was not used: messages carry different EDKs")
	}
	before := authz.decisions
	authz.denied = true
	if _, err := envelope.EncryptBytes(ctx, []byte("hello"), enc, envelope.EncryptOptions{}); !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("cached encrypt after a denial: %v", err)
	}
	authz.denied = false
	dec, err := s.DecryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := envelope.DecryptBytes(ctx, msgs[0], dec, envelope.DecryptOptions{}); err != nil {
		t.Fatal(err)
	}
	authz.denied = true
	if _, _, err := envelope.DecryptBytes(ctx, msgs[1], dec, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrNoDecryptKey) && !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("cached decrypt after a denial: %v", err)
	}
	if authz.decisions <= before {
		t.Fatal("cache hits were not authorized")
	}
}
