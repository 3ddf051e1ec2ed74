package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/keystack/keystack/keystore/awskms"
)

// Errors of this package, one per failure class, for errors.Is.
var (
	// ErrInvalidConfig is a bad endpoint or an unusable TLS or credential setting.
	ErrInvalidConfig = errors.New("client: invalid configuration")
	// ErrUnavailable is a call no endpoint answered (see UnavailableError),
	// or one the server could not serve (a 5xx answer).
	// It is awskms.ErrUnavailable, which the data-key path reports.
	ErrUnavailable = awskms.ErrUnavailable
	// ErrAccessDenied is a request the server's policy refused.
	// It is awskms.ErrAccessDenied, which the data-key path reports.
	ErrAccessDenied = awskms.ErrAccessDenied
	// ErrAuthentication is a request the server could not authenticate:
	// an unknown or revoked access key, a wrong secret, a stale clock, no
	// credential at all. It is awskms.ErrUnauthenticated, which the data-key
	// path reports.
	ErrAuthentication = awskms.ErrUnauthenticated
	// ErrNotFound is a key, alias or access key the server does not have.
	ErrNotFound = errors.New("keystack server: not found")
	// ErrExists is a key alias or other name already taken.
	ErrExists = errors.New("keystack server: already exists")
	// ErrAuditInvalid is an audit log the server found damaged.
	ErrAuditInvalid = errors.New("keystack server: the audit log does not verify")
	// ErrTLSTrust is a call that no endpoint answered where at least one
	// https endpoint's certificate did not verify (unknown CA, wrong host
	// name, expired): a trust configuration problem, not an outage, so it
	// does not match ErrUnavailable; retrying later will not help. The
	// error names each endpoint's failure, and errors.As finds the first
	// *tls.CertificateVerificationError in it.
	ErrTLSTrust = errors.New("keystack server: TLS certificate not trusted")
)

// authCodes are the error names of requests the server did not authenticate.
var authCodes = map[string]bool{
	"UnrecognizedClientException": true, "InvalidSignatureException": true, "IncompleteSignatureException": true,
	"MissingAuthenticationTokenException": true, "InvalidClientTokenId": true, "ExpiredTokenException": true,
}

// APIError is an error answer of the server: the operation, its KMS or
// keystack error name and message. It matches the package's sentinels by
// name (AccessDeniedException: ErrAccessDenied, and so on).
type APIError struct {
	Op      string
	Code    string
	Message string
	Status  int
}

func (e *APIError) Error() string {
	// Code and Message are the server's: they reach a terminal only
	// printable and bounded.
	msg := fmt.Sprintf("keystack server: %s: %s", e.Op, printable(e.Code, 128))
	if e.Message != "" {
		msg += ": " + printable(e.Message, maxMessage)
	}
	if authCodes[e.Code] {
		msg += " (check KEYSTACK_ACCESS_KEY_ID and KEYSTACK_SECRET_ACCESS_KEY, the server's Region and this host's clock)"
	}
	return msg
}

// Is maps the error name to the package's sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrAccessDenied:
		return e.Code == "AccessDeniedException"
	case ErrAuthentication:
		return authCodes[e.Code]
	case ErrNotFound:
		return e.Code == "NotFoundException" || e.Code == "CredentialNotFoundException"
	case ErrExists:
		return e.Code == "AlreadyExistsException"
	case ErrUnavailable:
		return e.Status >= 500 || e.Code == "ThrottlingException"
	}
	return false
}

// UnavailableError is a call that no endpoint answered. Attempts holds
// each endpoint's failure, in the order tried. MaybeApplied is set when
// a non-idempotent request reached a server that did not answer: it was
// not retried, and may or may not have taken effect.
type UnavailableError struct {
	Op           string
	Attempts     []error
	MaybeApplied bool
}

func (e *UnavailableError) Error() string {
	var parts []string
	seen := map[string]bool{}
	for _, a := range e.Attempts { // each failure once, though every round meets it
		if s := a.Error(); !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	msg := "keystack server unavailable: " + strings.Join(parts, "; ")
	if e.MaybeApplied {
		msg += " (" + e.Op + " reached the server but got no answer, so it was not retried: it may or may not have been applied)"
	}
	return msg
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the last attempt's failure.
func (e *UnavailableError) Unwrap() error {
	if len(e.Attempts) == 0 {
		return nil
	}
	return e.Attempts[len(e.Attempts)-1]
}

// trustError is a call that no endpoint answered where at least one
// endpoint's TLS certificate did not verify. Attempts holds each
// endpoint's failure, as in UnavailableError. It matches ErrTLSTrust,
// not ErrUnavailable: retrying later will not help.
type trustError struct {
	Op       string
	Attempts []error
}

func (e *trustError) Error() string {
	u := UnavailableError{Op: e.Op, Attempts: e.Attempts}
	return "keystack server's TLS certificate did not verify: " +
		strings.TrimPrefix(u.Error(), "keystack server unavailable: ")
}

// Is makes errors.Is(err, ErrTLSTrust) true.
func (e *trustError) Is(target error) bool { return target == ErrTLSTrust }

// Unwrap returns the first certificate verification failure.
func (e *trustError) Unwrap() error {
	for _, a := range e.Attempts {
		var cv *tls.CertificateVerificationError
		if errors.As(a, &cv) {
			return a
		}
	}
	return nil
}

// asTrustError returns ue as a trustError if one of its attempts failed
// certificate verification, else nil.
func asTrustError(ue *UnavailableError) *trustError {
	te := &trustError{Op: ue.Op, Attempts: ue.Attempts}
	if te.Unwrap() == nil {
		return nil
	}
	return te
}
