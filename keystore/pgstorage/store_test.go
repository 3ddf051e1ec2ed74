package pgstorage_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/pgtest"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/pgstorage"
)

// TestStoresOnOneDatabase: two Stores on one database, each with a
// Storage of its own (two replicas; one directory for the file audit
// log), creating keys at once lose none of each other's keys, and each
// sees the other's within MaxStale.
func TestStoresOnOneDatabase(t *testing.T) {
	c := pgtest.Start(t)
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
	waitFor(t, time.Second, func() bool {
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
