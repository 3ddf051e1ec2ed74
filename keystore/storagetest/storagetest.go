// Package storagetest is the conformance suite of keystore.Storage: every
// implementation (the keystore directory, a database) runs Run against
// fresh, empty instances and must pass all of it.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/keystore"
)

// Run checks the Storage contract on storages made by newStorage, each
// empty and independent of the others. Where a subtest needs two handles
// on one storage (two processes, two replicas), open returns a second
// handle on the storage it was given; nil means the same value.
func Run(t *testing.T, newStorage func(t *testing.T) keystore.Storage, open func(t *testing.T, s keystore.Storage) keystore.Storage) {
	if open == nil {
		open = func(_ *testing.T, s keystore.Storage) keystore.Storage { return s }
	}
	for _, doc := range []keystore.Document{keystore.StateDocument, keystore.PolicyDocument} {
		t.Run(string(doc)+"/Empty", func(t *testing.T) { testEmpty(t, newStorage(t), doc) })
		t.Run(string(doc)+"/CreateReadReplace", func(t *testing.T) { testCreateReadReplace(t, newStorage(t), doc) })
		t.Run(string(doc)+"/StaleWriteConflicts", func(t *testing.T) { testStale(t, newStorage(t), doc) })
		t.Run(string(doc)+"/ConcurrentWritersOneWins", func(t *testing.T) {
			s := newStorage(t)
			testConcurrent(t, s, open(t, s), doc)
		})
	}
	t.Run("DocumentsIndependent", func(t *testing.T) { testIndependent(t, newStorage(t)) })
	t.Run("LockExcludes", func(t *testing.T) {
		s := newStorage(t)
		testLock(t, s, open(t, s))
	})
	t.Run("WriteUnderLock", func(t *testing.T) { testWriteUnderLock(t, newStorage(t)) })
}

var ctx = context.Background()

func mustWrite(t *testing.T, s keystore.Storage, doc keystore.Document, data string, prev keystore.Revision) keystore.Revision {
	t.Helper()
	rev, err := s.Write(ctx, doc, []byte(data), prev)
	if err != nil {
		t.Fatalf("Write(%s): %v", doc, err)
	}
	if rev == keystore.NoRevision {
		t.Fatalf("Write(%s) returned NoRevision", doc)
	}
	return rev
}

func mustRead(t *testing.T, s keystore.Storage, doc keystore.Document, want string, wantRev keystore.Revision) {
	t.Helper()
	data, rev, err := s.Read(ctx, doc)
	if err != nil {
		t.Fatalf("Read(%s): %v", doc, err)
	}
	if string(data) != want || rev != wantRev {
		t.Fatalf("Read(%s) = %q at %q, want %q at %q", doc, data, rev, want, wantRev)
	}
	cur, err := s.Revision(ctx, doc)
	if err != nil || cur != wantRev {
		t.Fatalf("Revision(%s) = %q, %v; want %q", doc, cur, err, wantRev)
	}
}

func testEmpty(t *testing.T, s keystore.Storage, doc keystore.Document) {
	if _, _, err := s.Read(ctx, doc); !errors.Is(err, keystore.ErrNoDocument) {
		t.Fatalf("Read of a missing document: %v, want ErrNoDocument", err)
	}
	if rev, err := s.Revision(ctx, doc); err != nil || rev != keystore.NoRevision {
		t.Fatalf("Revision of a missing document = %q, %v; want NoRevision", rev, err)
	}
	if _, err := s.Write(ctx, doc, []byte("x"), keystore.Revision("no-such-revision")); !errors.Is(err, keystore.ErrConflict) {
		t.Fatalf("Write over a missing document from a revision: %v, want ErrConflict", err)
	}
	if _, _, err := s.Read(ctx, doc); !errors.Is(err, keystore.ErrNoDocument) {
		t.Fatalf("a refused write created the document: %v", err)
	}
}

func testCreateReadReplace(t *testing.T, s keystore.Storage, doc keystore.Document) {
	r1 := mustWrite(t, s, doc, "one", keystore.NoRevision)
	mustRead(t, s, doc, "one", r1)
	if _, err := s.Write(ctx, doc, []byte("again"), keystore.NoRevision); !errors.Is(err, keystore.ErrConflict) {
		t.Fatalf("creating an existing document: %v, want ErrConflict", err)
	}
	r2 := mustWrite(t, s, doc, "two", r1)
	if r2 == r1 {
		t.Fatal("a replaced document kept its revision")
	}
	mustRead(t, s, doc, "two", r2)
	// The same content again is a new revision: a writer holding r2 must
	// not mistake the document for the one it read.
	r3 := mustWrite(t, s, doc, "two", r2)
	if r3 == r2 {
		t.Fatal("rewriting the same content kept the revision")
	}
	mustRead(t, s, doc, "two", r3)
}

func testStale(t *testing.T, s keystore.Storage, doc keystore.Document) {
	r1 := mustWrite(t, s, doc, "base", keystore.NoRevision)
	r2 := mustWrite(t, s, doc, "first", r1)
	if _, err := s.Write(ctx, doc, []byte("second"), r1); !errors.Is(err, keystore.ErrConflict) {
		t.Fatalf("write from a stale revision: %v, want ErrConflict", err)
	}
	mustRead(t, s, doc, "first", r2)
}

// testConcurrent: writers racing from one revision, through two handles,
// produce exactly one new version of the document.
func testConcurrent(t *testing.T, a, b keystore.Storage, doc keystore.Document) {
	const writers = 8
	base := mustWrite(t, a, doc, "base", keystore.NoRevision)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	revs := make([]keystore.Revision, writers)
	start := make(chan struct{})
	for i := range writers {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			revs[i], errs[i] = s.Write(ctx, doc, fmt.Appendf(nil, "writer %d", i), base)
		})
	}
	close(start)
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("writers %d and %d both replaced revision %q", won, i, base)
		case err == nil:
			won = i
		case !errors.Is(err, keystore.ErrConflict):
			t.Fatalf("writer %d: %v, want success or ErrConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer succeeded")
	}
	data, rev, err := b.Read(ctx, doc)
	if err != nil || rev != revs[won] || !bytes.Equal(data, fmt.Appendf(nil, "writer %d", won)) {
		t.Fatalf("after the race: %q at %q (%v), want writer %d's at %q", data, rev, err, won, revs[won])
	}
}

func testIndependent(t *testing.T, s keystore.Storage) {
	rs := mustWrite(t, s, keystore.StateDocument, "state", keystore.NoRevision)
	rp := mustWrite(t, s, keystore.PolicyDocument, "policy", keystore.NoRevision)
	rs2 := mustWrite(t, s, keystore.StateDocument, "state 2", rs)
	mustRead(t, s, keystore.PolicyDocument, "policy", rp)
	mustRead(t, s, keystore.StateDocument, "state 2", rs2)
}

// testLock: a second Lock waits for the first's unlock, and gives up with
// its context's error.
func testLock(t *testing.T, a, b keystore.Storage) {
	unlock, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if u, err := b.Lock(short); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			u()
		}
		t.Fatalf("Lock while held: %v, want the context's deadline", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := b.Lock(ctx)
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned while the first was held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second Lock still waiting after unlock")
	}
}

// testWriteUnderLock: the lock holder's own reads and writes proceed.
func testWriteUnderLock(t *testing.T, s keystore.Storage) {
	unlock, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	r := mustWrite(t, s, keystore.StateDocument, "locked", keystore.NoRevision)
	r = mustWrite(t, s, keystore.StateDocument, "locked 2", r)
	mustRead(t, s, keystore.StateDocument, "locked 2", r)
}
