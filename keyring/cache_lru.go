package keyring

import (
	"bytes"
	"container/list"
	"context"
	"time"

	"github.com/keystack/keystack/envelope"
)

// cacheHit is what a hit hands the caller: its own copy of the data key,
// and the entry's EDKs, which it must clone (appendEDKClones).
type cacheHit struct {
	dataKey []byte
	edks    []envelope.EncryptedDataKey
}

// acquire looks id up, again after each wait, until it returns a usable
// entry's data key (hit.dataKey != nil, already counted against the
// entry's limits) or the caller is the one leader for id, which must then
// call finish.
func (c *Caching) acquire(ctx context.Context, id cacheID, n uint64, enc bool) (cacheHit, error) {
	for {
		hit, wait, err := c.acquireOnce(ctx, id, n, enc)
		if err != nil || !wait {
			return hit, err
		}
	}
}

// acquireOnce looks id up under the lock. It returns a usable entry's data
// (hit.dataKey != nil, already counted against the entry's limits), or
// wait=true after an in-flight inner call for id ended (the caller
// retries), or neither: the
// caller is now the one leader for id and must call finish. Checking and
// counting in one critical section is what keeps MaxMessages exact under
// concurrency.
func (c *Caching) acquireOnce(ctx context.Context, id cacheID, n uint64, enc bool) (hit cacheHit, wait bool, err error) {
	c.mu.Lock()
	if el, ok := c.entries[id]; ok {
		e := el.Value.(*cacheEntry)
		if c.usable(e, n, enc) {
			hit.dataKey = c.takeLocked(el, n, enc)
			c.mu.Unlock()
			hit.edks = e.edks // never written once cached: the caller clones it unlocked
			return hit, false, nil
		}
		c.evictLocked(el)
	}
	if ch, ok := c.inflight[id]; ok {
		c.mu.Unlock()
		select {
		case <-ch:
			return hit, true, nil
		case <-ctx.Done():
			return hit, false, ctx.Err()
		}
	}
	c.inflight[id] = make(chan struct{})
	if enc {
		c.stats.EncryptMisses++
	} else {
		c.stats.DecryptMisses++
	}
	c.mu.Unlock()
	return hit, false, nil
}

// usable reports whether e is younger than MaxAge and, for an encrypt entry,
// whether one more message of n bytes stays within MaxMessages and MaxBytes.
func (c *Caching) usable(e *cacheEntry, n uint64, enc bool) bool {
	if c.since(e.created) >= c.maxAge {
		return false
	}
	if !enc {
		return true
	}
	return e.messages < c.maxMessages && n <= c.maxBytes-e.bytes // e.bytes <= maxBytes: no overflow
}

// since returns c.now().Sub(t). With the real clock that is time.Since,
// which reads only the monotonic clock, as the subtraction would use, where
// time.Now reads the wall clock too: the same answer for about half the cost
// of every hit's age check.
func (c *Caching) since(t time.Time) time.Duration {
	if c.realClock {
		return time.Since(t)
	}
	return c.now().Sub(t)
}

// takeLocked counts one use of el and returns a copy of its data key; the
// data key must be copied under the lock because eviction zeroes it.
func (c *Caching) takeLocked(el *list.Element, n uint64, enc bool) []byte {
	e := el.Value.(*cacheEntry)
	c.lru.MoveToFront(el)
	if enc {
		e.messages++
		e.bytes += n
		c.stats.EncryptHits++
	} else {
		c.stats.DecryptHits++
	}
	return bytes.Clone(e.dataKey)
}

// finish ends the leader's turn for id: it stores e (when the inner call
// succeeded), evicts beyond capacity, and wakes the waiters.
func (c *Caching) finish(id cacheID, e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e != nil {
		if old, ok := c.entries[id]; ok {
			c.evictLocked(old)
		}
		c.entries[id] = c.lru.PushFront(e)
		for c.lru.Len() > c.capacity {
			c.evictLocked(c.lru.Back())
		}
	}
	if ch, ok := c.inflight[id]; ok {
		close(ch)
		delete(c.inflight, id)
	}
}

// evictLocked removes el and zeroes its data key as a courtesy; callers
// only ever received copies.
func (c *Caching) evictLocked(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.id)
	clear(e.dataKey)
}
