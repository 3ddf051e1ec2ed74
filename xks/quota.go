package xks

import (
	"sync"
	"time"

	"github.com/keystack/keystack/internal/tokenbucket"
)

// quotas are the token buckets of the prefixes with a RateLimit, by
// path. A bucket outlives configuration reloads that keep its prefix's
// rate and burst; a changed quota starts a full bucket.
type quotas struct {
	mu      sync.Mutex
	buckets map[string]*tokenbucket.Bucket
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
	if b == nil || b.Rate != p.RateLimit || b.Burst != burst {
		if q.buckets == nil {
			q.buckets = map[string]*tokenbucket.Bucket{}
		}
		b = tokenbucket.New(p.RateLimit, burst, now)
		q.buckets[p.Path] = b
	}
	if !b.Take(now) {
		return errThrottled
	}
	return nil
}
