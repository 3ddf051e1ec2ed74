package pgstorage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/internal/pgtest"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// TestStoresOnOneDatabase: two Stores on one database, each with a
// Storage of its own (two replicas; one directory for the file audit
// log), creating keys at once lose none of each other's keys, and each
// sees the other's within MaxStale.
func TestStoresOnOneDatabase(t *testing.T) {
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	dir := t.TempDir()
	const owner = "user:test"
	a, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: owner,
		Storage: open(t, dsn, pgstorage.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := keystore.Open(dir, keystore.OpenOptions{Principal: owner, Storage: open(t, dsn, pgstorage.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const each = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i := range each {
		for name, st := range map[string]*keystore.Store{"a": a, "b": b} {
			wg.Go(func() {
				_, err := st.CreateKey(ctx, fmt.Sprintf("%s%d", name, i), keystore.CreateKeyOptions{})
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent CreateKey: %v", err)
		}
	}
	pgtest.WaitFor(t, "both replicas to list every key", time.Second, func() bool {
		for _, st := range []*keystore.Store{a, b} {
			keys, err := st.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 2*each {
				return false
			}
		}
		return true
	})
}

// TestNoRoundTripOnHotPath: with warm caches, sealing and opening data
// under a key (the key server's Encrypt, GenerateDataKey and Decrypt) send
// nothing to the database: the revisions come from the followed cache.
// (The decisions here go to an allow-all Authorizer: the file audit log's
// anchor updates are state writes of their own, not of the operations.)
func TestNoRoundTripOnHotPath(t *testing.T) {
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	dir := t.TempDir()
	init, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: "user:test", Storage: open(t, dsn, pgstorage.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := init.CreateKey(ctx, "k", keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	init.Close()
	st := open(t, dsn, pgstorage.Options{})
	s, err := keystore.Open(dir, keystore.OpenOptions{Principal: "user:test", Storage: st, Authorizer: allowAll{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	roundTrip := func() {
		d, err := serverstore.Of(s).SealData(ctx, policy.ActionGenerateDataKey, "k", []byte("data key"), func(int) []byte { return []byte("aad") }, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := serverstore.Of(s).OpenData(ctx, policy.ActionDecrypt, "k", *d, []byte("aad"), nil); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip() // warm: reads and unseals
	before := st.RoundTrips()
	for range 200 {
		roundTrip()
	}
	if n := st.RoundTrips() - before; n != 0 {
		t.Fatalf("200 seal+open pairs with warm caches sent %d statements to the database, want 0", n)
	}
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, policy.Request) error { return nil }
