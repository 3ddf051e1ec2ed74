package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// wrapped returns EDKs made by the real raw AES keyring directly, so the
// cache sees them for the first time on decrypt.
func wrapped(t *testing.T, ec map[string]string) (dataKey []byte, edks []envelope.EncryptedDataKey) {
	t.Helper()
	m := encrypt(t, newRawAES(t, "wrap-key"), envelope.SuiteCommitted, ec, 1)
	return m.DataKey, m.EncryptedDataKeys
}

func TestCacheDecryptHitsAndAge(t *testing.T) {
	c, inner, clock := newCached(t, keyring.CacheOptions{MaxAge: time.Minute})
	dk, edks := wrapped(t, ctxA)
	for i := range 3 {
		if m := decrypt(t, c, envelope.SuiteCommitted, ctxA, edks); !bytes.Equal(m.DataKey, dk) {
			t.Fatalf("decrypt %d: wrong data key", i)
		}
	}
	wantCalls(t, inner, 0, 1)
	clock.Advance(time.Minute)
	if m := decrypt(t, c, envelope.SuiteCommitted, ctxA, edks); !bytes.Equal(m.DataKey, dk) {
		t.Fatal("wrong data key after expiry")
	}
	wantCalls(t, inner, 0, 2)
	want := keyring.CacheStats{DecryptHits: 2, DecryptMisses: 2, Entries: 1}
	if got := c.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestCacheDecryptKeyedByEDKsContextAndSuite(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{})
	_, edks := wrapped(t, ctxA)
	decrypt(t, c, envelope.SuiteCommitted, ctxA, edks)

	// The same EDKs under another context must reach the inner keyring, which
	// rejects them: a cached key is never handed out for the wrong context.
	m := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: map[string]string{"tenant": "b"}}
	if err := c.OnDecrypt(context.Background(), m, edks); !errors.Is(err, envelope.ErrNoDecryptKey) || m.DataKey != nil {
		t.Fatalf("other context: err = %v, key set = %v", err, m.DataKey != nil)
	}
	// Failures are not cached: the inner keyring is asked again.
	if err := c.OnDecrypt(context.Background(), m, edks); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("second try: err = %v", err)
	}
	wantCalls(t, inner, 0, 3)
	// EDK order does not matter (the ID sorts EDK hashes); a changed EDK does.
	_, other := wrapped(t, ctxA)
	both := append(cloneEDKList(edks), other...)
	decrypt(t, c, envelope.SuiteCommitted, ctxA, both)
	decrypt(t, c, envelope.SuiteCommitted, ctxA, []envelope.EncryptedDataKey{both[1], both[0]})
	wantCalls(t, inner, 0, 4)
	// Same EDKs under another suite with the same key length: a separate entry.
	decrypt(t, c, envelope.Suite(0x0178), ctxA, edks)
	wantCalls(t, inner, 0, 5)
}

func TestCacheDecryptPresetKeyAndBypass(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{})
	_, edks := wrapped(t, ctxA)
	preset := []byte("already set")
	m := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ctxA, DataKey: preset}
	if err := c.OnDecrypt(context.Background(), m, edks); err != nil || !bytes.Equal(m.DataKey, preset) {
		t.Fatalf("preset key: err = %v, key changed = %v", err, !bytes.Equal(m.DataKey, preset))
	}
	wantCalls(t, inner, 0, 0)
	// Identity-KDF suites bypass the decrypt cache too.
	legacy := encrypt(t, newRawAES(t, "wrap-key"), envelope.Suite(0x0078), ctxA, 1)
	decrypt(t, c, envelope.Suite(0x0078), ctxA, legacy.EncryptedDataKeys)
	decrypt(t, c, envelope.Suite(0x0078), ctxA, legacy.EncryptedDataKeys)
	wantCalls(t, inner, 0, 2)
	if s := c.Stats(); s.DecryptBypasses != 2 || s.Entries != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestCacheConcurrentMessageLimit checks that the message limit is exact
// under contention: every data key is used exactly MaxMessages times and the
// inner keyring is called ceil(total/MaxMessages) times.
func TestCacheConcurrentMessageLimit(t *testing.T) {
	const goroutines, perG, limit = 32, 100, 50
	c, inner, _ := newCached(t, keyring.CacheOptions{MaxMessages: limit})
	var mu sync.Mutex
	uses := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for range perG {
				m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ctxA, PlaintextLength: 1024}
				if err := c.OnEncrypt(context.Background(), m); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				uses[string(m.DataKey)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const total = goroutines * perG
	wantKeys := (total + limit - 1) / limit
	wantCalls(t, inner, int64(wantKeys), 0)
	if len(uses) != wantKeys {
		t.Errorf("%d distinct data keys, want %d", len(uses), wantKeys)
	}
	for _, n := range uses {
		if n > limit {
			t.Errorf("a data key was used %d times, limit %d", n, limit)
		}
	}
	if s := c.Stats(); s.EncryptMisses != uint64(wantKeys) || s.EncryptHits != total-uint64(wantKeys) {
		t.Errorf("Stats = %+v", s)
	}
}

// TestCacheConcurrentDecryptOneUnwrap checks that concurrent decrypts of one
// message share a single inner unwrap.
func TestCacheConcurrentDecryptOneUnwrap(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{})
	dk, edks := wrapped(t, ctxA)
	var wg sync.WaitGroup
	bad := make(chan string, 16)
	for range 16 {
		wg.Go(func() {
			m := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ctxA}
			if err := c.OnDecrypt(context.Background(), m, edks); err != nil || !bytes.Equal(m.DataKey, dk) {
				bad <- fmt.Sprintf("err = %v, right key = %v", err, bytes.Equal(m.DataKey, dk))
			}
		})
	}
	wg.Wait()
	close(bad)
	for msg := range bad {
		t.Error(msg)
	}
	wantCalls(t, inner, 0, 1)
	if s := c.Stats(); s.DecryptMisses != 1 || s.DecryptHits != 15 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestCacheWaiterHonorsContext checks that a caller waiting for another
// goroutine's inner call returns when its own context ends.
func TestCacheWaiterHonorsContext(t *testing.T) {
	inner := &countingKeyring{Keyring: newRawAES(t, "wrap-key")}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	inner.before = func() { once.Do(func() { close(entered); <-release }) }
	c, err := keyring.NewCaching(inner, keyring.CacheOptions{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	leaderDone := make(chan error, 1)
	go func() {
		m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ctxA, PlaintextLength: 1}
		leaderDone <- c.OnEncrypt(context.Background(), m)
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ctxA, PlaintextLength: 1}
	if err := c.OnEncrypt(ctx, m); !errors.Is(err, context.Canceled) || m.DataKey != nil {
		t.Fatalf("waiter: err = %v, key set = %v", err, m.DataKey != nil)
	}
	close(release)
	if err := <-leaderDone; err != nil {
		t.Fatal(err)
	}
	encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	wantCalls(t, inner, 1, 0)
}

func TestCachePurge(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{PartitionID: "p1"})
	a := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	c.Purge()
	if s := c.Stats(); s.Entries != 0 {
		t.Fatalf("Entries after Purge = %d", s.Entries)
	}
	if b := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1); bytes.Equal(a.DataKey, b.DataKey) {
		t.Fatal("purged key reused")
	}
	wantCalls(t, inner, 2, 0)
}

// BenchmarkCachedEncrypt measures 1 KiB messages through envelope.EncryptBytes
// and the bare OnEncrypt call, with and without the cache, over a local raw
// AES key. Against a local key the cache only adds its SHA-512 entry ID; its
// gain is the KMS or HSM round trip it saves, which this benchmark omits.
func BenchmarkCachedEncrypt(b *testing.B) {
	plaintext := make([]byte, 1024)
	for _, bc := range []struct {
		name   string
		cached bool
	}{{"cached", true}, {"uncached", false}} {
		var k envelope.Keyring = newRawAES(b, "wrap-key")
		if bc.cached {
			c, err := keyring.NewCaching(k, keyring.CacheOptions{MaxAge: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			k = c
		}
		ctx := context.Background()
		b.Run("EncryptBytes1KiB/"+bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(plaintext)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := envelope.EncryptBytes(ctx, plaintext, k, envelope.EncryptOptions{Context: ctxA}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("OnEncrypt/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ctxA, PlaintextLength: 1024}
				if err := k.OnEncrypt(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
