package keystore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keystack/keystack/policy"
)

// auditResetAction names the break-glass reset in the audit log. No policy
// grants or denies it: the keystore passphrase authorizes it.
const auditResetAction = "keystack:ResetPolicy"

// ResetPolicy is the keystore owner's break-glass: it replaces the policy
// with the owner-only default (policy.DefaultPolicy of the owner recorded
// at init) whatever the policy in force says, so that a policy that locks
// everyone out can be undone. It requires the keystore passphrase, not any
// permission; a keystore without a passphrase can be reset only by its
// owner principal. Every attempt, allowed or refused, is recorded in the
// audit log before anything is written (failing closed). It returns the
// owner.
func (s *Store) ResetPolicy(ctx context.Context) (string, error) {
	if s.az == nil {
		return "", fmt.Errorf("%w: the store was opened with its own Authorizer", ErrNotSupported)
	}
	unlock, err := s.st.Lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	f, err := s.load()
	if err != nil {
		return "", err
	}
	rev, err := s.st.Revision(ctx, PolicyDocument)
	if err != nil {
		return "", fmt.Errorf("keystore: read %s: %w", policyFile, err)
	}
	owner := f.Owner
	if owner == "" {
		owner = osPrincipal()
	}
	if err := s.proveOwner(f, owner); err != nil {
		return "", s.recordReset(ctx, policy.Refusal(policy.ReasonRefused, "break-glass reset refused: "+err.Error()), err)
	}
	p, err := policy.DefaultPolicy(owner)
	if err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return "", err
	}
	text := "break-glass reset: keystore passphrase verified; owner-only policy for " + owner
	allow := policy.Decision{Effect: policy.Allow, Reasons: []policy.Reason{{Kind: policy.ReasonBreakGlass, Text: text}}, Explanation: []string{text}}
	if err := s.recordReset(ctx, allow, nil); err != nil {
		return "", err
	}
	if err := s.writePolicy(ctx, data, rev); err != nil {
		return "", err
	}
	s.az.engine.SetPolicy(p)
	return owner, nil
}

// proveOwner checks the passphrase of a sealed store, or that the store's
// principal is its owner when the store has no passphrase.
func (s *Store) proveOwner(f *storeFile, owner string) error {
	if f.Insecure {
		if s.principal != owner {
			return &policy.DeniedError{Action: auditResetAction, Resource: policy.ResourcePolicy, Principal: s.principal}
		}
		return nil
	}
	kek, err := s.unlockKEK(f)
	clear(kek)
	return err
}

// recordReset records a reset attempt's decision d and returns cause (nil
// when allowed), or an audit failure, which refuses the reset.
func (s *Store) recordReset(ctx context.Context, d policy.Decision, cause error) error {
	req := policy.Request{Principal: s.principal, Action: auditResetAction, Resource: policy.ResourcePolicy, Time: s.now()}
	if err := s.az.RecordDecision(ctx, req, d); err != nil {
		return fmt.Errorf("%w: %w: %w", policy.ErrAccessDenied, policy.ErrAuditFailed, err)
	}
	return cause
}
