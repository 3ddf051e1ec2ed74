package xks

import (
	"sync"
	"time"
)

// quotas are the token buckets of the prefixes with a RateLimit, by
// path. A bucket outlives configuration reloads that keep its prefix's
// rate and burst; a changed quota starts a full bucket.
type quotas struct {
	mu      sync.Mutex
	buckets map[string]*quotaBucket
}

type quotaBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

var errThrottled = errorf("ThrottlingException", "the request rate exceeds this path prefix's quota")

// take takes a token from p's bucket at now, or returns
// ThrottlingException when it has none. A prefix without a RateLimit
// is never throttled.
func (q *quotas) take(p *Prefix, now time.Time) error {
	if p.RateLimit <= 0 {
		return nil
	}
	burst := float64(p.RateBurst)
	if burst < 1 {
		burst = max(1, p.RateLimit)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.buckets[p.Path]
	if b == nil || b.rate != p.RateLimit || b.burst != burst {
		if q.buckets == nil {
			q.buckets = map[string]*quotaBucket{}
		}
		b = &quotaBucket{rate: p.RateLimit, burst: burst, tokens: burst, last: now}
		q.buckets[p.Path] = b
	}
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return errThrottled
	}
	b.tokens--
	return nil
}
