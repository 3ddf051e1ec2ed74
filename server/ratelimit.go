package server

import (
	"sync"
	"time"

	"github.com/keystack/keystack/internal/tokenbucket"
)

// limiter is a token bucket per principal: rate tokens a second, at most
// burst saved. A zero rate means no limit.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*tokenbucket.Bucket
}

// maxBuckets bounds the limiter's memory; buckets are only made for
// authenticated principals, and a full table is cleared of full buckets.
const maxBuckets = 10000

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	if burst < 1 {
		burst = max(1, int(rate))
	}
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*tokenbucket.Bucket{}}
}

// allow takes a token from principal's bucket, reporting whether it had one.
func (l *limiter) allow(principal string) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[principal]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = tokenbucket.New(l.rate, l.burst, now)
		l.buckets[principal] = b
	}
	return b.Take(now)
}

// prune drops buckets that have refilled: forgetting them changes nothing.
func (l *limiter) prune(now time.Time) {
	for p, b := range l.buckets {
		if b.Full(now) {
			delete(l.buckets, p)
		}
	}
}
