package server

import (
	"testing"
	"time"
)

func TestLimiterTokenBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(2, 3, func() time.Time { return now })
	for i := range 3 {
		if !l.allow("a") {
			t.Fatalf("burst request %d refused", i)
		}
	}
	if l.allow("a") {
		t.Error("a fourth request within the burst was allowed")
	}
	if !l.allow("b") {
		t.Error("another principal shares a's bucket")
	}
	now = now.Add(500 * time.Millisecond) // one token at 2/s
	if !l.allow("a") || l.allow("a") {
		t.Error("the bucket did not refill at its rate")
	}
	now = now.Add(time.Hour)
	for i := range 3 {
		if !l.allow("a") {
			t.Fatalf("after an idle hour, request %d refused", i)
		}
	}
	if l.allow("a") {
		t.Error("an idle hour saved more than the burst")
	}
	var unlimited *limiter
	if !unlimited.allow("x") || !newLimiter(0, 0, time.Now).allow("x") {
		t.Error("no limit refused a request")
	}
}
