package keystore

import (
	"context"
	"io"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/policy"
)

// ErrAuditDamaged is gate.ErrAuditDamaged.
//
// Deprecated: use gate.ErrAuditDamaged.
var ErrAuditDamaged = gate.ErrAuditDamaged

// GetPolicy is Gate().GetPolicy.
//
// Deprecated: use Gate().GetPolicy.
func (s *Store) GetPolicy(ctx context.Context) (*policy.Policy, error) { return s.gate.GetPolicy(ctx) }

// PutPolicy is Gate().PutPolicy.
//
// Deprecated: use Gate().PutPolicy.
func (s *Store) PutPolicy(ctx context.Context, p *policy.Policy, opts policy.PutOptions) error {
	return s.gate.PutPolicy(ctx, p, opts)
}

// SimulatePolicy is Gate().SimulatePolicy.
//
// Deprecated: use Gate().SimulatePolicy.
func (s *Store) SimulatePolicy(ctx context.Context, req policy.Request) (policy.Decision, error) {
	return s.gate.SimulatePolicy(ctx, req)
}

// ResetPolicy is Gate().ResetPolicy.
//
// Deprecated: use Gate().ResetPolicy.
func (s *Store) ResetPolicy(ctx context.Context) (string, error) { return s.gate.ResetPolicy(ctx) }

// AuditLog is Gate().AuditLog.
//
// Deprecated: use Gate().AuditLog.
func (s *Store) AuditLog(ctx context.Context) (io.ReadCloser, error) { return s.gate.AuditLog(ctx) }

// VerifyAudit is Gate().VerifyAudit.
//
// Deprecated: use Gate().VerifyAudit.
func (s *Store) VerifyAudit(ctx context.Context, anchors ...audit.Anchor) (*audit.VerifyReport, error) {
	return s.gate.VerifyAudit(ctx, anchors...)
}

// AuditCheckpoint is Gate().AuditCheckpoint.
//
// Deprecated: use Gate().AuditCheckpoint.
func (s *Store) AuditCheckpoint(ctx context.Context) (audit.Anchor, error) {
	return s.gate.AuditCheckpoint(ctx)
}

// ResetAuditAnchor is Gate().ResetAuditAnchor.
//
// Deprecated: use Gate().ResetAuditAnchor.
func (s *Store) ResetAuditAnchor(ctx context.Context) (string, error) {
	return s.gate.ResetAuditAnchor(ctx)
}
