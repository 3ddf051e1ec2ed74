package keyring

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/envelope"
)

// ErrInvalidCacheOptions is returned by NewCaching for unusable options.
var ErrInvalidCacheOptions = errors.New("keyring: invalid cache options")

const (
	defaultCacheCapacity = 1000
	maxCacheMessages     = 1 << 32 // ESDK caching-cmm.md "Limit Messages" default and our ceiling
	maxCacheBytes        = math.MaxInt64
)

// CacheOptions configures a Caching. The limits are the ESDK caching
// CMM's security thresholds (framework/caching-cmm.md): a cached data key is
// used for at most MaxAge, MaxMessages messages and MaxBytes plaintext bytes.
type CacheOptions struct {
	// MaxAge is how long a data key may be used after the inner keyring
	// produced it. Required, > 0.
	MaxAge time.Duration
	// MaxMessages is how many messages one cached data key may encrypt.
	// 0 means 2^32; larger values are rejected.
	MaxMessages uint64
	// MaxBytes is how many plaintext bytes one cached data key may encrypt.
	// 0 means unlimited (2^63-1). When it is set, encryptions of unknown
	// length (PlaintextLength -1, i.e. streams) bypass the cache.
	MaxBytes uint64
	// Capacity bounds the number of cached entries (encrypt and decrypt
	// together); the least recently used is evicted first. 0 means 1000.
	Capacity int
	// PartitionID separates this keyring's entries from others'. Empty means
	// a random ID, unique to this keyring.
	PartitionID string
	// Now is the clock; nil means time.Now. Tests pass a fake clock.
	Now func() time.Time
}

// CacheStats counts cache outcomes. A bypass is a call the cache does not
// serve by design (signed suite, preset data key, unknown length); it is
// neither a hit nor a miss.
type CacheStats struct {
	EncryptHits, EncryptMisses, EncryptBypasses uint64
	DecryptHits, DecryptMisses, DecryptBypasses uint64
	// Entries is the number of entries currently cached.
	Entries int
}

// Caching caches the data keys of an inner keyring, with the
// semantics of the ESDK caching CMM and local materials cache
// (framework/caching-cmm.md, framework/local-cryptographic-materials-cache.md).
// It saves a KMS or HSM round trip per message at the cost of reusing a data
// key across messages; each message still has its own derived key, since
// every suite it caches derives per-message keys with HKDF.
//
// On encrypt, messages with the same suite and encryption context share one
// data key and its encrypted data keys until a limit is reached. On decrypt,
// a data key unwrapped once for a given suite, EDK set and context is reused
// until MaxAge. Failed calls are never cached. Evicted data keys are zeroed.
// A Caching is safe for concurrent use; concurrent callers of a missing
// entry wait for one inner call instead of each making their own.
type Caching struct {
	inner        envelope.Keyring
	maxAge       time.Duration
	maxMessages  uint64
	maxBytes     uint64
	bytesLimited bool
	capacity     int
	partition    [sha512.Size]byte      // SHA-512 of the partition ID
	memo         idMemo                 // encrypt IDs of recent contexts
	decMemo      idMemo                 // decrypt IDs of recent contexts and EDK sets
	lastEC       atomic.Pointer[[]byte] // the last valid context serialized (serialContext)
	now          func() time.Time
	realClock    bool // now is time.Now: since may read only the monotonic clock

	mu       sync.Mutex
	lru      *list.List // of *cacheEntry, most recently used first
	entries  map[cacheID]*list.Element
	inflight map[cacheID]chan struct{} // closed when the leader's inner call ends
	stats    CacheStats
}

var _ envelope.Keyring = (*Caching)(nil)

// cacheID is an ESDK cache entry identifier (caching-cmm.md, Appendix A).
type cacheID [sha512.Size]byte

type cacheEntry struct {
	id       cacheID
	dataKey  []byte
	edks     []envelope.EncryptedDataKey // encrypt entries only
	created  time.Time
	messages uint64 // encrypt entries only
	bytes    uint64 // encrypt entries only
}

// NewCaching returns a keyring that caches inner's data keys. It
// fails with ErrInvalidCacheOptions when inner is nil or an option is out of range.
func NewCaching(inner envelope.Keyring, opts CacheOptions) (*Caching, error) {
	switch {
	case inner == nil:
		return nil, fmt.Errorf("%w: nil inner keyring", ErrInvalidCacheOptions)
	case opts.MaxAge <= 0:
		return nil, fmt.Errorf("%w: MaxAge must be > 0", ErrInvalidCacheOptions)
	case opts.MaxMessages > maxCacheMessages:
		return nil, fmt.Errorf("%w: MaxMessages %d exceeds 2^32", ErrInvalidCacheOptions, opts.MaxMessages)
	case opts.Capacity < 0:
		return nil, fmt.Errorf("%w: negative Capacity", ErrInvalidCacheOptions)
	}
	c := &Caching{
		inner: inner, maxAge: opts.MaxAge, maxMessages: opts.MaxMessages,
		maxBytes: opts.MaxBytes, bytesLimited: opts.MaxBytes != 0,
		capacity: opts.Capacity, now: opts.Now,
		lru: list.New(), entries: map[cacheID]*list.Element{}, inflight: map[cacheID]chan struct{}{},
	}
	if c.maxMessages == 0 {
		c.maxMessages = maxCacheMessages
	}
	if !c.bytesLimited {
		c.maxBytes = maxCacheBytes
	}
	if c.capacity == 0 {
		c.capacity = defaultCacheCapacity
	}
	if c.now == nil {
		c.now, c.realClock = time.Now, true
	}
	pid := opts.PartitionID
	if pid == "" {
		pid = rand.Text() // caching-cmm.md: a default ID unique to this instance
	}
	c.partition = sha512.Sum512([]byte(pid))
	return c, nil
}

// Stats returns a snapshot of the cache counters.
func (c *Caching) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = c.lru.Len()
	return s
}

// Purge evicts and zeroes every cached data key.
func (c *Caching) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.evictLocked(c.lru.Back())
	}
}

// OnEncrypt implements envelope.Keyring. It serves m from the cache when it
// can, counting one message and m.PlaintextLength bytes against the entry;
// an entry that this use would take past a limit is evicted and the inner
// keyring is called for a fresh data key. It bypasses the cache (calls inner
// every time, stores nothing) when m.DataKey is already set, for signed
// suites (their context carries a fresh per-message public key, so they could
// never hit), for suites without a KDF, when the plaintext length is unknown
// and MaxBytes is set, and when the length alone exceeds MaxBytes.
func (c *Caching) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	id, ok := c.encryptID(m)
	if !ok {
		c.count(&c.stats.EncryptBypasses)
		return c.inner.OnEncrypt(ctx, m)
	}
	n := uint64(max(m.PlaintextLength, 0))
	hit, err := c.acquire(ctx, id, n, true)
	if err != nil {
		return err
	}
	if hit.dataKey != nil {
		m.DataKey = hit.dataKey
		m.EncryptedDataKeys = appendEDKClones(m.EncryptedDataKeys, hit.edks)
		return nil
	}
	return c.fillEncrypt(ctx, m, id, n)
}

// fillEncrypt calls the inner keyring as the one leader for id and caches
// the data key and the EDKs the inner keyring added, counting this message.
func (c *Caching) fillEncrypt(ctx context.Context, m *envelope.EncryptionMaterials, id cacheID, n uint64) error {
	var e *cacheEntry
	defer func() { c.finish(id, e) }()
	start := len(m.EncryptedDataKeys)
	if err := c.inner.OnEncrypt(ctx, m); err != nil {
		return err
	}
	if len(m.DataKey) != m.Suite.DataKeyLen() || len(m.EncryptedDataKeys) == start {
		return nil // not a usable result to share; the caller's checks decide
	}
	if c.maxMessages == 1 {
		return nil // this message used up the key: nothing left to share
	}
	e = &cacheEntry{
		id: id, dataKey: bytes.Clone(m.DataKey), edks: appendEDKClones(nil, m.EncryptedDataKeys[start:]),
		created: c.now(), messages: 1, bytes: n,
	}
	return nil
}

// OnDecrypt implements envelope.Keyring. It leaves m unchanged when
// m.DataKey is set; otherwise it returns a copy of a data key the inner
// keyring unwrapped earlier for the same suite, EDK set and context, if that
// is younger than MaxAge, or asks the inner keyring and caches its answer.
// Suites without a KDF bypass the cache, as the ESDK requires.
func (c *Caching) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	id, ok := c.decryptID(m, edks)
	if !ok {
		c.count(&c.stats.DecryptBypasses)
		return c.inner.OnDecrypt(ctx, m, edks)
	}
	hit, err := c.acquire(ctx, id, 0, false)
	if err != nil {
		return err
	}
	if hit.dataKey != nil {
		m.DataKey = hit.dataKey
		return nil
	}
	return c.fillDecrypt(ctx, m, edks, id)
}

func (c *Caching) fillDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey, id cacheID) error {
	var e *cacheEntry
	defer func() { c.finish(id, e) }()
	if err := c.inner.OnDecrypt(ctx, m, edks); err != nil {
		return err
	}
	if len(m.DataKey) == m.Suite.DataKeyLen() {
		e = &cacheEntry{id: id, dataKey: bytes.Clone(m.DataKey), created: c.now()}
	}
	return nil
}

func (c *Caching) count(p *uint64) {
	c.mu.Lock()
	*p++
	c.mu.Unlock()
}

// appendEDKClones appends deep copies of edks to dst, with all their bytes
// in one allocation; each field is capped at its length, so appending to
// one never touches another.
func appendEDKClones(dst, edks []envelope.EncryptedDataKey) []envelope.EncryptedDataKey {
	size := 0
	for _, e := range edks {
		size += len(e.ProviderInfo) + len(e.Ciphertext)
	}
	buf := make([]byte, 0, size)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	dst = slices.Grow(dst, len(edks))
	for _, e := range edks {
		dst = append(dst, envelope.EncryptedDataKey{ProviderID: e.ProviderID, ProviderInfo: take(e.ProviderInfo), Ciphertext: take(e.Ciphertext)})
	}
	return dst
}

// hasKDF reports whether s derives its encryption key from the data key;
// the ESDK never caches identity-KDF suites (caching-cmm.md).
func hasKDF(s envelope.Suite) bool { return s.Known() && s>>8 != 0x00 }
