package xks

import "time"

// SetClock sets the clock h checks request times and quotas against.
func SetClock(h *Handler, now func() time.Time) { h.now = now }
