package tokenbucket

import (
	"testing"
	"time"
)

// TestBucket: a new bucket holds its burst; it refills at its rate, never
// above its burst; Full says when forgetting it changes nothing.
func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New(2, 3, t0)
	for i := 0; i < 3; i++ {
		if !b.Take(t0) {
			t.Fatalf("take %d of a full bucket of 3 refused", i+1)
		}
	}
	if b.Take(t0) || b.Full(t0) {
		t.Fatal("an empty bucket gave a token or says it is full")
	}
	if !b.Take(t0.Add(500*time.Millisecond)) || b.Take(t0.Add(500*time.Millisecond)) {
		t.Fatal("half a second at 2/s must refill exactly one token")
	}
	later := t0.Add(time.Hour)
	if !b.Full(later) {
		t.Fatal("not full after an hour")
	}
	for i := 0; i < 3; i++ {
		if !b.Take(later) {
			t.Fatalf("take %d after an hour refused", i+1)
		}
	}
	if b.Take(later) {
		t.Fatal("refilled above its burst")
	}
}
