// Package tokenbucket is the token bucket behind the key server's
// per-principal rate limit and the XKS proxy's per-prefix quotas.
package tokenbucket

import "time"

// Bucket holds up to Burst tokens and refills at Rate tokens a second.
// It is not safe for concurrent use; its callers hold their table's lock.
type Bucket struct {
	Rate, Burst float64 // as made by New; read-only
	tokens      float64
	last        time.Time
}

// New returns a full bucket at now.
func New(rate, burst float64, now time.Time) *Bucket {
	return &Bucket{Rate: rate, Burst: burst, tokens: burst, last: now}
}

// Take refills b up to now and takes a token, reporting whether it had
// one.
func (b *Bucket) Take(now time.Time) bool {
	b.tokens = b.level(now)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Full reports whether b has refilled by now: forgetting it then changes
// nothing, as a new bucket starts full.
func (b *Bucket) Full(now time.Time) bool { return b.level(now) >= b.Burst }

func (b *Bucket) level(now time.Time) float64 {
	return min(b.Burst, b.tokens+now.Sub(b.last).Seconds()*b.Rate)
}
