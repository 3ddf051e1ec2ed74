package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/testclock"
	"github.com/keystack/keystack/keyring"
)

// countingKeyring wraps a real keyring and counts the calls that reach it.
// failEnc makes the next encrypts fail before reaching the real keyring, and
// before (when set) runs at the start of every call.
type countingKeyring struct {
	envelope.Keyring
	enc, dec atomic.Int64
	failEnc  atomic.Int64
	before   func()
}

var errInjected = errors.New("injected inner failure")

func (k *countingKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	if k.before != nil {
		k.before()
	}
	k.enc.Add(1)
	if k.failEnc.Add(-1) >= 0 {
		return errInjected
	}
	k.failEnc.Store(0)
	return k.Keyring.OnEncrypt(ctx, m)
}

func (k *countingKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if k.before != nil {
		k.before()
	}
	k.dec.Add(1)
	return k.Keyring.OnDecrypt(ctx, m, edks)
}

func newRawAES(t testing.TB, name string) envelope.Keyring {
	t.Helper()
	k, err := keyring.NewRawAES("test-ns", name, bytes.Repeat([]byte{byte(len(name))}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newCached returns a caching keyring over a counted real raw AES keyring,
// on a fake clock. opts.MaxAge defaults to one hour.
func newCached(t testing.TB, opts keyring.CacheOptions) (*keyring.Caching, *countingKeyring, *testclock.Clock) {
	t.Helper()
	inner := &countingKeyring{Keyring: newRawAES(t, "wrap-key")}
	clock := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if opts.MaxAge == 0 {
		opts.MaxAge = time.Hour
	}
	opts.Now = clock.Now
	c, err := keyring.NewCaching(inner, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, inner, clock
}

func encrypt(t testing.TB, k envelope.Keyring, s envelope.Suite, ec map[string]string, n int64) *envelope.EncryptionMaterials {
	t.Helper()
	m := &envelope.EncryptionMaterials{Suite: s, EncryptionContext: ec, PlaintextLength: n}
	if err := k.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt: %v", err)
	}
	if len(m.DataKey) != s.DataKeyLen() || len(m.EncryptedDataKeys) != 1 {
		t.Fatalf("OnEncrypt: got %d-byte key and %d EDKs", len(m.DataKey), len(m.EncryptedDataKeys))
	}
	return m
}

var ctxA = map[string]string{"tenant": "a"}

func wantCalls(t *testing.T, inner *countingKeyring, enc, dec int64) {
	t.Helper()
	if got := inner.enc.Load(); got != enc {
		t.Errorf("inner OnEncrypt calls = %d, want %d", got, enc)
	}
	if got := inner.dec.Load(); got != dec {
		t.Errorf("inner OnDecrypt calls = %d, want %d", got, dec)
	}
}

func TestCacheOptionsValidation(t *testing.T) {
	inner := newRawAES(t, "k")
	for name, tc := range map[string]struct {
		inner envelope.Keyring
		opts  keyring.CacheOptions
	}{
		"nil inner":         {nil, keyring.CacheOptions{MaxAge: time.Minute}},
		"zero age":          {inner, keyring.CacheOptions{}},
		"negative age":      {inner, keyring.CacheOptions{MaxAge: -time.Second}},
		"too many messages": {inner, keyring.CacheOptions{MaxAge: time.Minute, MaxMessages: 1<<32 + 1}},
		"negative capacity": {inner, keyring.CacheOptions{MaxAge: time.Minute, Capacity: -1}},
	} {
		if _, err := keyring.NewCaching(tc.inner, tc.opts); !errors.Is(err, keyring.ErrInvalidCacheOptions) {
			t.Errorf("%s: err = %v, want ErrInvalidCacheOptions", name, err)
		}
	}
	if _, err := keyring.NewCaching(inner, keyring.CacheOptions{MaxAge: time.Minute, MaxMessages: 1 << 32}); err != nil {
		t.Errorf("MaxMessages 2^32: %v", err)
	}
}

func TestCacheEncryptReuseAndDecryptable(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{})
	m1 := encrypt(t, c, envelope.SuiteCommitted, ctxA, 10)
	m2 := encrypt(t, c, envelope.SuiteCommitted, map[string]string{"tenant": "a"}, 10)
	if !bytes.Equal(m1.DataKey, m2.DataKey) || !bytes.Equal(m1.EncryptedDataKeys[0].Ciphertext, m2.EncryptedDataKeys[0].Ciphertext) {
		t.Fatal("second encrypt with the same suite and context did not reuse the cached key and EDK")
	}
	wantCalls(t, inner, 1, 0)
	// The cached EDK is the real inner keyring's: a fresh, uncached keyring unwraps it.
	dm := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ctxA}
	if err := newRawAES(t, "wrap-key").OnDecrypt(context.Background(), dm, m2.EncryptedDataKeys); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dm.DataKey, m1.DataKey) {
		t.Fatal("cached EDK unwraps to a different key")
	}
	want := keyring.CacheStats{EncryptHits: 1, EncryptMisses: 1, Entries: 1}
	if got := c.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestCacheAgeLimit(t *testing.T) {
	c, inner, clock := newCached(t, keyring.CacheOptions{MaxAge: time.Minute})
	first := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	clock.Advance(time.Minute - time.Nanosecond)
	if m := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1); !bytes.Equal(m.DataKey, first.DataKey) {
		t.Fatal("entry younger than MaxAge was not reused")
	}
	clock.Advance(time.Nanosecond)
	if m := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1); bytes.Equal(m.DataKey, first.DataKey) {
		t.Fatal("entry MaxAge old was reused")
	}
	wantCalls(t, inner, 2, 0)
	if s := c.Stats(); s.EncryptHits != 1 || s.EncryptMisses != 2 || s.Entries != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestCacheMessageLimit(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{MaxMessages: 3})
	var keys [][]byte
	for range 7 {
		keys = append(keys, encrypt(t, c, envelope.SuiteCommitted, ctxA, 1).DataKey)
	}
	for i := range keys {
		same := bytes.Equal(keys[i], keys[i/3*3])
		if !same {
			t.Errorf("message %d did not use the key of message %d", i, i/3*3)
		}
		if i%3 == 0 && i > 0 && bytes.Equal(keys[i], keys[i-1]) {
			t.Errorf("message %d reused a key past MaxMessages", i)
		}
	}
	wantCalls(t, inner, 3, 0)
}

func TestCacheMessageLimitOne(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{MaxMessages: 1})
	a := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	b := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	if bytes.Equal(a.DataKey, b.DataKey) {
		t.Fatal("MaxMessages 1 reused a key")
	}
	wantCalls(t, inner, 2, 0)
	if s := c.Stats(); s.Entries != 0 {
		t.Errorf("Entries = %d, want 0: a used-up key stays cached", s.Entries)
	}
}

func TestCacheByteLimit(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{MaxBytes: 100})
	a := encrypt(t, c, envelope.SuiteCommitted, ctxA, 40)
	b := encrypt(t, c, envelope.SuiteCommitted, ctxA, 60) // exactly 100 bytes: allowed
	d := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)  // 101: fresh key
	if !bytes.Equal(a.DataKey, b.DataKey) || bytes.Equal(b.DataKey, d.DataKey) {
		t.Fatal("byte limit not enforced at exactly MaxBytes")
	}
	wantCalls(t, inner, 2, 0)

	// A message larger than MaxBytes on its own, or of unknown length,
	// bypasses the cache every time.
	for _, n := range []int64{101, -1, 101, -1} {
		encrypt(t, c, envelope.SuiteCommitted, ctxA, n)
	}
	wantCalls(t, inner, 6, 0)
	if s := c.Stats(); s.EncryptBypasses != 4 || s.EncryptHits != 1 || s.EncryptMisses != 2 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestCacheStreamingWithoutByteLimit(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{})
	a := encrypt(t, c, envelope.SuiteCommitted, ctxA, -1)
	b := encrypt(t, c, envelope.SuiteCommitted, ctxA, -1)
	if !bytes.Equal(a.DataKey, b.DataKey) {
		t.Fatal("unknown-length messages not cached when MaxBytes is unlimited")
	}
	wantCalls(t, inner, 1, 0)
}

func TestCacheLRUCapacity(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{Capacity: 2})
	ec := func(s string) map[string]string { return map[string]string{"k": s} }
	a := encrypt(t, c, envelope.SuiteCommitted, ec("a"), 1)
	encrypt(t, c, envelope.SuiteCommitted, ec("b"), 1)
	encrypt(t, c, envelope.SuiteCommitted, ec("a"), 1) // a is now most recent
	encrypt(t, c, envelope.SuiteCommitted, ec("c"), 1) // evicts b
	wantCalls(t, inner, 3, 0)
	if m := encrypt(t, c, envelope.SuiteCommitted, ec("a"), 1); !bytes.Equal(m.DataKey, a.DataKey) {
		t.Error("recently used entry was evicted")
	}
	wantCalls(t, inner, 3, 0)
	encrypt(t, c, envelope.SuiteCommitted, ec("b"), 1)
	wantCalls(t, inner, 4, 0)
	if s := c.Stats(); s.Entries != 2 {
		t.Errorf("Entries = %d, want 2", s.Entries)
	}
}

func TestCacheContextsAndSuitesDoNotShare(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{})
	seen := map[string]string{}
	for i, tc := range []struct {
		s  envelope.Suite
		ec map[string]string
	}{
		{envelope.SuiteCommitted, nil},
		{envelope.SuiteCommitted, ctxA},
		{envelope.SuiteCommitted, map[string]string{"tenant": "b"}},
		{envelope.SuiteCommitted, map[string]string{"tenant": "a", "x": ""}},
		{envelope.Suite(0x0178), ctxA},
		{envelope.Suite(0x0114), ctxA},
	} {
		m := encrypt(t, c, tc.s, tc.ec, 1)
		name := fmt.Sprintf("#%d %v %v", i, tc.s, tc.ec)
		if prev, ok := seen[string(m.DataKey)]; ok {
			t.Errorf("%s shares a data key with %s", name, prev)
		}
		seen[string(m.DataKey)] = name
	}
	wantCalls(t, inner, 6, 0)
}

func TestCacheBypasses(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{})
	// Signed suites carry a per-message public key in the context: never cached.
	a := encrypt(t, c, envelope.SuiteCommittedSigned, ctxA, 1)
	b := encrypt(t, c, envelope.SuiteCommittedSigned, ctxA, 1)
	if bytes.Equal(a.DataKey, b.DataKey) {
		t.Fatal("signed suite reused a data key")
	}
	// Identity-KDF suites are never cached (ESDK caching-cmm.md).
	encrypt(t, c, envelope.Suite(0x0078), ctxA, 1)
	encrypt(t, c, envelope.Suite(0x0078), ctxA, 1)
	// A preset data key is wrapped by the inner keyring, not replaced.
	preset := bytes.Repeat([]byte{7}, 32)
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, DataKey: bytes.Clone(preset), PlaintextLength: 1}
	if err := c.OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.DataKey, preset) || len(m.EncryptedDataKeys) != 1 {
		t.Fatal("preset data key was not wrapped as given")
	}
	wantCalls(t, inner, 5, 0)
	if s := c.Stats(); s.EncryptBypasses != 5 || s.EncryptHits != 0 || s.EncryptMisses != 0 || s.Entries != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestCacheFailureNotCached(t *testing.T) {
	c, inner, _ := newCached(t, keyring.CacheOptions{})
	inner.failEnc.Store(1)
	m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ctxA, PlaintextLength: 1}
	if err := c.OnEncrypt(context.Background(), m); !errors.Is(err, errInjected) {
		t.Fatalf("err = %v, want the inner error", err)
	}
	if s := c.Stats(); s.Entries != 0 {
		t.Fatalf("failed call cached: %+v", s)
	}
	a := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	b := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	if !bytes.Equal(a.DataKey, b.DataKey) {
		t.Fatal("success after a failure was not cached")
	}
	wantCalls(t, inner, 2, 0)
}

func TestCacheReturnsCopies(t *testing.T) {
	c, _, _ := newCached(t, keyring.CacheOptions{})
	a := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	want, wantCT := bytes.Clone(a.DataKey), bytes.Clone(a.EncryptedDataKeys[0].Ciphertext)
	wantInfo := bytes.Clone(a.EncryptedDataKeys[0].ProviderInfo)
	clear(a.DataKey)
	clear(a.EncryptedDataKeys[0].Ciphertext)
	a.EncryptedDataKeys[0].ProviderInfo[0] ^= 1
	b := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1)
	if !bytes.Equal(b.DataKey, want) || !bytes.Equal(b.EncryptedDataKeys[0].Ciphertext, wantCT) ||
		!bytes.Equal(b.EncryptedDataKeys[0].ProviderInfo, wantInfo) {
		t.Fatal("mutating returned encryption materials changed the cache")
	}
	clear(b.DataKey)
	if d := encrypt(t, c, envelope.SuiteCommitted, ctxA, 1); !bytes.Equal(d.DataKey, want) {
		t.Fatal("mutating a cache hit's data key changed the cache")
	}

	edks := cloneEDKList(b.EncryptedDataKeys)
	d1 := decrypt(t, c, envelope.SuiteCommitted, ctxA, edks)
	clear(d1.DataKey)
	if d2 := decrypt(t, c, envelope.SuiteCommitted, ctxA, edks); !bytes.Equal(d2.DataKey, want) {
		t.Fatal("mutating a decrypted data key changed the cache")
	}
}

func cloneEDKList(edks []envelope.EncryptedDataKey) []envelope.EncryptedDataKey {
	out := make([]envelope.EncryptedDataKey, len(edks))
	for i, e := range edks {
		out[i] = envelope.EncryptedDataKey{ProviderID: e.ProviderID, ProviderInfo: bytes.Clone(e.ProviderInfo), Ciphertext: bytes.Clone(e.Ciphertext)}
	}
	return out
}

func decrypt(t testing.TB, k envelope.Keyring, s envelope.Suite, ec map[string]string, edks []envelope.EncryptedDataKey) *envelope.DecryptionMaterials {
	t.Helper()
	m := &envelope.DecryptionMaterials{Suite: s, EncryptionContext: ec}
	if err := k.OnDecrypt(context.Background(), m, edks); err != nil {
		t.Fatalf("OnDecrypt: %v", err)
	}
	return m
}
