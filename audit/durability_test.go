package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFailClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("unwritable path", func(t *testing.T) {
		// A regular file as the parent directory fails even for root,
		// unlike a read-only directory.
		dir := t.TempDir()
		parent := filepath.Join(dir, "file")
		if err := os.WriteFile(parent, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(filepath.Join(parent, "audit.log"), Options{MACKey: testMAC}); !errors.Is(err, ErrWrite) {
			t.Fatalf("Open under a file: %v", err)
		}
	})
	t.Run("no key", func(t *testing.T) {
		if _, err := Open(filepath.Join(t.TempDir(), "a.log"), Options{MACKey: []byte("short")}); !errors.Is(err, ErrNoKey) {
			t.Fatalf("short key: %v", err)
		}
	})
	for _, mode := range []Durability{Sync, Batch} {
		t.Run("closed file "+modeName(mode), func(t *testing.T) {
			l := open(t, filepath.Join(t.TempDir(), "audit.log"), Options{Durability: mode})
			if err := l.Append(ctx, rec(1)); err != nil {
				t.Fatal(err)
			}
			l.f.Close() // the descriptor goes away under the log
			if err := l.Append(ctx, rec(2)); !errors.Is(err, ErrWrite) {
				t.Fatalf("append to closed file: %v", err)
			}
			if err := l.Append(ctx, rec(3)); !errors.Is(err, ErrWrite) {
				t.Fatalf("later append must fail too: %v", err)
			}
			if err := l.Close(); !errors.Is(err, ErrWrite) {
				t.Fatalf("Close: %v", err)
			}
			if err := l.Append(ctx, rec(4)); !errors.Is(err, ErrClosed) {
				t.Fatalf("append after Close: %v", err)
			}
		})
	}
	t.Run("fsync failure in batch mode", func(t *testing.T) {
		l := open(t, filepath.Join(t.TempDir(), "audit.log"), Options{Durability: Batch, BatchInterval: time.Millisecond})
		l.syncFile = func(*os.File) error { return errors.New("EIO") }
		deadline := time.Now().Add(5 * time.Second)
		var err error
		for err == nil && time.Now().Before(deadline) {
			err = l.Append(ctx, rec(1))
			time.Sleep(2 * time.Millisecond)
		}
		if !errors.Is(err, ErrWrite) {
			t.Fatalf("fsync failure never surfaced: %v", err)
		}
		if err := l.Append(ctx, rec(2)); !errors.Is(err, ErrWrite) {
			t.Fatalf("append after fsync failure: %v", err)
		}
		l.Close()
	})
	t.Run("oversized record fails alone", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.log")
		l := open(t, path, Options{})
		big := rec(1)
		big.Reason = strings.Repeat("x", MaxLineSize)
		if err := l.Append(ctx, big); err == nil {
			t.Fatal("oversized record accepted")
		}
		if err := l.Append(ctx, rec(2)); err != nil {
			t.Fatalf("log unusable after a rejected record: %v", err)
		}
		l.Close()
		if _, err := verifyFile(t, path, Key{MAC: testMAC}); err != nil {
			t.Fatal(err)
		}
	})
}

func modeName(d Durability) string {
	if d == Sync {
		return "sync"
	}
	return "batch"
}

// TestConcurrentWriters: 16 goroutines × 200 records keep one valid chain,
// and in Sync mode group commit uses fewer fsyncs than records.
func TestConcurrentWriters(t *testing.T) {
	const workers, per = 16, 200
	for _, mode := range []Durability{Sync, Batch} {
		t.Run(modeName(mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l := open(t, path, Options{Durability: mode, CheckpointEvery: 500, BatchInterval: 5 * time.Millisecond})
			var wg sync.WaitGroup
			errs := make(chan error, workers*per)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if err := l.Append(context.Background(), rec(w*per+i)); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			syncs := l.syncs.Load()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyFile(t, path, Key{MAC: testMAC})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Records != workers*per || rep.Checkpoints != workers*per/500+1 {
				t.Fatalf("report %+v", rep)
			}
			t.Logf("%d records, %d fsyncs before Close", rep.Records, syncs)
			if mode == Sync && syncs >= workers*per {
				t.Fatalf("group commit shared no fsync: %d fsyncs for %d records", syncs, workers*per)
			}
		})
	}
}

// TestTwoWriters: two Logs on one file (as two processes would have)
// serialize on flock and pick up each other's chain head, in both modes
// (Batch mode holds the lock between appends for leaseTime).
func TestTwoWriters(t *testing.T) {
	for _, mode := range []Durability{Sync, Batch} {
		t.Run(modeName(mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			a := open(t, path, Options{Durability: mode})
			b := open(t, path, Options{Durability: mode})
			var wg sync.WaitGroup
			for _, l := range []*Log{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 100; i++ {
						if err := l.Append(context.Background(), rec(i)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyFile(t, path, Key{MAC: testMAC})
			if err != nil || rep.Records != 200 || rep.Head != b.headHex() {
				t.Fatalf("report %+v err %v", rep, err)
			}
		})
	}
}

// TestBatchLeaseAlternation: a Batch-mode Log that appended and went idle
// lets another writer of the file in, and continues the chain after it.
func TestBatchLeaseAlternation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := open(t, path, Options{Durability: Batch})
	b := open(t, path, Options{Durability: Batch})
	for i := 0; i < 6; i++ {
		l := a
		if i%2 == 1 {
			l = b
		}
		if err := l.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, Key{MAC: testMAC})
	if err != nil || rep.Records != 6 {
		t.Fatalf("report %+v err %v", rep, err)
	}
}

func TestQueryAndDecisions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := open(t, path, Options{LogContextValues: true, Now: func() time.Time { return now }})
	ctx := context.Background()
	ec := map[string]string{"dept": "hr"}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Append(ctx, Record{Type: TypeDecision, Principal: "user:owner", Action: "keystack:Encrypt", Resource: "key/a",
		Decision: "Allow", Statements: []string{"DefaultOwnerFullAccess"}, EncryptionContext: ec}))
	must(l.Append(ctx, Record{Type: TypeDecision, Principal: "user:eve", Action: "keystack:Decrypt", Resource: "key/a",
		KeyVersion: 2, Decision: "Deny", Implicit: true}))
	now = now.Add(time.Hour)
	must(l.Append(ctx, Record{Principal: "user:owner", Action: "keystack:RotateKey", Resource: "key/b", Outcome: "ok"}))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	query := func(f Filter) []Entry {
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		var out []Entry
		for e, err := range Query(fh, f) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	if got := query(Filter{}); len(got) != 3 {
		t.Fatalf("all: %d entries", len(got))
	}
	deny := query(Filter{Principal: "user:eve"})
	if len(deny) != 1 || deny[0].Decision != "Deny" || !deny[0].Implicit || deny[0].Type != TypeDecision || deny[0].KeyVersion != 2 {
		t.Fatalf("eve: %+v", deny)
	}
	allow := query(Filter{Key: "a", Action: "KEYSTACK:ENCRYPT"})
	if len(allow) != 1 || allow[0].Decision != "Allow" || allow[0].Statements[0] != "DefaultOwnerFullAccess" || allow[0].Context["dept"] != "hr" || allow[0].ContextHMAC == "" {
		t.Fatalf("owner: %+v", allow)
	}
	if got := query(Filter{Since: now}); len(got) != 1 || got[0].Action != "keystack:RotateKey" {
		t.Fatalf("since: %+v", got)
	}
	if got := query(Filter{Until: now}); len(got) != 2 {
		t.Fatalf("until: %+v", got)
	}
	bad := strings.NewReader("{not json}\n")
	for _, err := range Query(bad, Filter{}) {
		if err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Fatalf("bad line: %v", err)
		}
	}
}

func benchAppend(b *testing.B, mode Durability) {
	l := open(b, filepath.Join(b.TempDir(), "audit.log"), Options{Durability: mode})
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		r := rec(1)
		for pb.Next() {
			if err := l.Append(context.Background(), r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(l.syncs.Load())/float64(b.N), "fsyncs/op")
}

func BenchmarkAuditAppendSync(b *testing.B)  { benchAppend(b, Sync) }
func BenchmarkAuditAppendBatch(b *testing.B) { benchAppend(b, Batch) }
