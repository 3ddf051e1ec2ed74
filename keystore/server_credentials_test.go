package keystore

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLookupCredentialCache: a second lookup of a credential is served
// without the store's unlock lock (no verifier check, no unseal), and
// every change of the state drops what was cached: a revocation by
// another process is refused on the next lookup, and a reseal by another
// process is not answered with the old secret.
func TestLookupCredentialCache(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	c1 := must2(t)(s.CreateCredential(ctx, "service:a"))
	c2 := must2(t)(s.CreateCredential(ctx, "service:b"))
	srv := openTestStore(t, s.Dir(), testPass)
	for _, c := range []*Credential{c1, c2} {
		if got, err := ops(srv).LookupCredential(context.Background(), c.AccessKeyID); err != nil || got.Secret != c.Secret || got.Principal != c.Principal {
			t.Fatalf("lookup %s: %+v, %v", c.AccessKeyID, got, err)
		}
	}
	srv.mu.Lock() // a cached lookup must not need it
	done := make(chan error, 1)
	go func() { _, err := ops(srv).LookupCredential(context.Background(), c1.AccessKeyID); done <- err }()
	select {
	case err := <-done:
		srv.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // it never returns without the cache
		srv.mu.Unlock()
		t.Fatal("a cached lookup waited for the unlock lock")
	}

	if err := s.RevokeCredential(ctx, c1.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := ops(srv).LookupCredential(context.Background(), c1.AccessKeyID); !errors.Is(err, ErrCredentialNotFound) {
		t.Fatalf("revoked by another process: got %v, want ErrCredentialNotFound", err)
	}
	if got, err := ops(srv).LookupCredential(context.Background(), c2.AccessKeyID); err != nil || got.Secret != c2.Secret {
		t.Fatalf("the other credential after the revocation: %v", err)
	}
	if err := s.ChangePassphrase(ctx, []byte("another")); err != nil {
		t.Fatal(err)
	}
	if _, err := ops(srv).LookupCredential(context.Background(), c2.AccessKeyID); !errors.Is(err, errResealed) {
		t.Fatalf("resealed by another process: got %v, want errResealed", err)
	}
}

func must2(t *testing.T) func(*Credential, error) *Credential {
	return func(c *Credential, err error) *Credential {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}
