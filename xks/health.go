package xks

import (
	"context"
	"time"
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

// healthStatus answers GetHealthStatus from a deep check (a seal and open
// round trip under Config.HealthKey on its backend, a PKCS#11 round trip
// for a token key) at most healthTTL old. It is not authorized: the
// specification excludes it from secondary authorization.
func (h *Handler) healthStatus(ctx context.Context) (any, error) {
	cfg := h.cfg.Load()
	status := "ACTIVE"
	if h.check(ctx, cfg.HealthKey) != nil {
		status = "UNAVAILABLE"
	}
	return healthResponse{
		FleetSize: cfg.FleetSize, ProxyVendor: "keystack", ProxyModel: "keystack XKS proxy",
		EKMVendor:    or(cfg.EKMVendor, "keystack"),
		FleetDetails: []fleetMember{{ID: "keystack-" + cfg.HealthKey, Model: or(cfg.EKMModel, "keystack key store"), HealthStatus: status}},
	}, nil
}

// check runs the probe when the cached result is older than healthTTL;
// concurrent callers wait for one probe.
func (h *Handler) check(ctx context.Context, key string) error {
	c := &h.health
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && h.now().Sub(c.at) < healthTTL {
		return c.last
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c.last, c.at = h.store.ProbeKey(pctx, key), h.now()
	if c.last != nil && h.Logger != nil {
		h.Logger.Warn("xks health check failed", "key", key, "error", c.last)
	}
	return c.last
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
