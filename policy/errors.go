package policy

import (
	"errors"
	"fmt"

	"github.com/keystack/keystack/internal/keyname"
)

// Errors, one per failure class, for errors.Is.
var (
	// ErrInvalidPolicy is matched by every policy validation error.
	ErrInvalidPolicy = errors.New("policy: invalid policy")
	// ErrAccessDenied is matched by every refusal of Authorize, including
	// refusals caused by a failure to record the decision.
	ErrAccessDenied = errors.New("policy: access denied")
	// ErrAuditFailed is matched when a decision could not be recorded and
	// the operation was therefore refused (fail closed).
	ErrAuditFailed = errors.New("policy: decision could not be audited")
	// ErrEscalation is returned by IsSubset when a new policy could grant
	// more than its writer holds.
	ErrEscalation = errors.New("policy: new policy grants more than the writer holds")
	// ErrLockout is returned by a policy write (gate's PutPolicy) for a
	// policy under which the writer could no longer replace the policy.
	ErrLockout = errors.New("policy: new policy would lock the writer out")
)

// ValidationError locates a problem in a policy document by JSON path, e.g.
// Statement[2].Condition.DateLessThan["keystack:CurrentTime"].
type ValidationError struct {
	Path string
	Msg  string
}

func (e *ValidationError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%v: %s", ErrInvalidPolicy, e.Msg)
	}
	return fmt.Sprintf("%v: %s: %s", ErrInvalidPolicy, e.Path, e.Msg)
}

// Is makes errors.Is(err, ErrInvalidPolicy) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidPolicy }

// DeniedError is the refusal Authorize returns. Its text names the action,
// resource and principal, never the policy's statements or conditions.
type DeniedError struct {
	Action     string
	Resource   string
	KeyVersion int // 0: the request named no version
	Principal  string
}

func (e *DeniedError) Error() string {
	res := e.Resource
	if e.KeyVersion > 0 {
		res = keyname.Versioned(res, e.KeyVersion)
	}
	return fmt.Sprintf("%v: %s may not %s on %s", ErrAccessDenied, e.Principal, e.Action, res)
}

// Is makes errors.Is(err, ErrAccessDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrAccessDenied }
