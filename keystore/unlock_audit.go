package keystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/keystack/keystack/audit"
)

// Audit record of a failed unlock: passphrase guessing leaves a trace.
const (
	actionUnlock     = "keystack:Unlock"
	outcomeBadUnlock = "bad-passphrase"
	resourceKeystore = "keystore"
)

// auditFailedUnlock records err in the audit log when it is a wrong
// passphrase, and returns err (also saying so if the record failed).
func (s *Store) auditFailedUnlock(err error) error {
	if !errors.Is(err, ErrBadPassphrase) || s.az == nil {
		return err
	}
	r := audit.Record{Principal: s.principal, Action: actionUnlock, Resource: resourceKeystore, Outcome: outcomeBadUnlock}
	if aerr := s.az.recordOperation(context.Background(), r); aerr != nil {
		return fmt.Errorf("%w (and recording it in the audit log failed: %v)", err, aerr)
	}
	return err
}

// recordOperation appends r to the store's current log, failing closed
// once the log is closed or found damaged.
func (a *authzState) recordOperation(ctx context.Context, r audit.Record) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.log == nil {
		return a.noLog()
	}
	return a.log.Append(ctx, r)
}
