package xks

import (
	"context"
)

type fleetMember struct {
	ID           string `json:"id"`
	Model        string `json:"model"`
	HealthStatus string `json:"healthStatus"`
}

type healthResponse struct {
	FleetSize    int           `json:"xksProxyFleetSize"`
	ProxyVendor  string        `json:"xksProxyVendor"`
	ProxyModel   string        `json:"xksProxyModel"`
	EKMVendor    string        `json:"ekmVendor"`
	FleetDetails []fleetMember `json:"ekmFleetDetails"`
}

// healthStatus answers GetHealthStatus from deep checks (a seal and open
// round trip under each health key on its backend, a PKCS#11 round trip
// for a token key) at most healthTTL old: one fleet entry per key, ACTIVE
// or UNAVAILABLE. It is not authorized: the specification excludes it
// from secondary authorization.
func (h *Handler) healthStatus(ctx context.Context) (any, error) {
	cfg := h.cfg.Load()
	resp := healthResponse{FleetSize: cfg.FleetSize, ProxyVendor: "keystack", ProxyModel: "keystack XKS proxy",
		EKMVendor: or(cfg.EKMVendor, "keystack")}
	for _, key := range append([]string{cfg.HealthKey}, cfg.HealthKeys...) {
		status := "ACTIVE"
		if h.check(ctx, key) != nil {
			status = "UNAVAILABLE"
		}
		resp.FleetDetails = append(resp.FleetDetails, fleetMember{ID: "keystack-" + key,
			Model: or(cfg.EKMModel, "keystack key store"), HealthStatus: status})
	}
	return resp, nil
}

// check runs key's probe when its cached result is older than healthTTL;
// concurrent callers wait for one probe. A probe gets the backend
// deadline and a slot like any request: one past it is UNAVAILABLE, and
// that result is cached too, so a stuck backend is not probed again
// until it is healthTTL old.
func (h *Handler) check(ctx context.Context, key string) error {
	c := &h.health
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.last[key]; ok && h.now().Sub(r.at) < healthTTL {
		return r.err
	}
	pctx, cancel := withDeadline(ctx, h.cfg.Load())
	defer cancel()
	_, err := backendCall(pctx, h, func(ctx context.Context) (struct{}, error) { return struct{}{}, h.store.ProbeKey(ctx, key) })
	r := healthResult{err: err, at: h.now()}
	if c.last == nil || len(c.last) > 64 { // keys of earlier configurations
		c.last = map[string]healthResult{}
	}
	c.last[key] = r
	if r.err != nil && h.Logger != nil {
		h.Logger.Warn("xks health check failed", "key", key, "error", r.err)
	}
	return r.err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
