package policy

import "context"

// Authorizer is the single decision point operations call before acting.
// Authorize returns nil to allow, or an error matching ErrAccessDenied; any
// non-nil error means the operation must be refused.
type Authorizer interface {
	Authorize(ctx context.Context, req Request) error
}

// PutOptions modify a policy write (gate's PutPolicy).
type PutOptions struct {
	// BypassLockoutSafetyCheck allows a policy under which the writer may
	// no longer replace the policy (as AWS KMS PutKeyPolicy's flag of the
	// same name). Only the keystore owner's break-glass reset undoes it.
	BypassLockoutSafetyCheck bool
}
