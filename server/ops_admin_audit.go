package server

import (
	"time"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/kmswire"
)

// Limits of ShowAudit: records in one answer (the most recent that match).
const (
	defaultAuditLimit = 1000
	maxAuditLimit     = 5000
)

type showAuditReq struct {
	Principal, Key, Action string
	Since, Until           string // RFC 3339; empty: unbounded
	Limit                  int
}

// showAudit returns the most recent audit records that match, oldest
// first (keystack:ReadAudit on "audit", as VerifyAudit); Truncated says
// older matching records were left out.
func showAudit(c *call, r *showAuditReq) (any, error) {
	limit := r.Limit
	if limit == 0 {
		limit = defaultAuditLimit
	}
	if limit < 1 || limit > maxAuditLimit {
		return nil, kmswire.Errorf("ValidationException", "Limit must be 1 to %d", maxAuditLimit)
	}
	f := audit.Filter{Principal: r.Principal, Key: r.Key, Action: r.Action}
	for _, t := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"Since", r.Since, &f.Since}, {"Until", r.Until, &f.Until}} {
		if t.in == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.in)
		if err != nil {
			return nil, kmswire.Errorf("ValidationException", "%s must be an RFC 3339 time", t.name)
		}
		*t.out = v
	}
	rd, err := c.s.cfg.Store.Gate().AuditLog(c.plain())
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	ring, n := make([]audit.Entry, limit), 0
	for e, err := range audit.Query(rd, f) {
		if err != nil {
			return nil, err
		}
		ring[n%limit] = e
		n++
	}
	out := make([]audit.Entry, 0, min(n, limit))
	for i := max(0, n-limit); i < n; i++ {
		out = append(out, ring[i%limit])
	}
	return map[string]any{"Records": out, "Truncated": n > limit}, nil
}
