package awskms

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aws/smithy-go"
	"github.com/keystack/keystack/internal/safetext"
)

// Errors returned by this package, one per failure class, for errors.Is.
var (
	// ErrInvalidKeyID is returned for a key identifier that is not a KMS key
	// or alias ARN, in Options or in an EDK's provider info.
	ErrInvalidKeyID = errors.New("awskms: invalid KMS key ARN")
	// ErrInvalidOptions is returned by New for an inconsistent configuration.
	ErrInvalidOptions = errors.New("awskms: invalid options")
	// ErrNoEncryptKey is returned by OnEncrypt on a keyring without KeyIDs
	// (a discovery keyring can only decrypt).
	ErrNoEncryptKey = errors.New("awskms: keyring has no key to encrypt with")
	// ErrNoMatchingKey is recorded when no aws-kms EDK names a key this
	// keyring may use, so nothing was sent to KMS.
	ErrNoMatchingKey = errors.New("awskms: no encrypted data key for a configured KMS key")
	// ErrBadResponse is returned when KMS answers for a different key than
	// the one asked, or with a data key of the wrong length.
	ErrBadResponse = errors.New("awskms: unexpected KMS response")
	// ErrUnavailable is matched by a failed KMS call when KMS could not
	// serve it: no answer (connection refused or reset, DNS failure, no
	// answer within Options.Timeout), or an answer that KMS itself is
	// failing (KMSInternalException, DependencyTimeoutException, throttled
	// through every retry). The key itself may be fine.
	ErrUnavailable = errors.New("awskms: KMS unavailable")
	// ErrAccessDenied is matched by a KMS call refused with
	// AccessDeniedException: the key policy, IAM (or keystack server's
	// policy) does not allow the caller this operation on this key.
	ErrAccessDenied = errors.New("awskms: KMS denied access")
	// ErrUnauthenticated is matched by a KMS call refused because KMS (or
	// keystack server) did not accept the caller's credentials: an unknown
	// or revoked access key, a wrong secret, a stale clock, none at all.
	ErrUnauthenticated = errors.New("awskms: KMS did not accept the credentials")
)

// unauthenticatedCodes are the AWS error codes of a call whose
// credentials were not accepted.
var unauthenticatedCodes = map[string]bool{
	"UnrecognizedClientException": true, "InvalidSignatureException": true, "IncompleteSignatureException": true,
	"MissingAuthenticationTokenException": true, "InvalidClientTokenId": true, "ExpiredTokenException": true,
}

// unavailableCodes are the AWS error codes that mean KMS could not serve
// the call now, whatever the key.
var unavailableCodes = map[string]bool{
	"KMSInternalException": true, "DependencyTimeoutException": true,
	"ThrottlingException": true, "ServiceUnavailableException": true,
}

// noAnswerError is a KMS call that got no answer: the Region's endpoint
// refused or dropped the connection, or did not answer within Timeout.
// Earlier is set when the call was not sent because an earlier call to
// the Region got no answer a moment ago. It matches ErrUnavailable.
type noAnswerError struct {
	Region   string
	Timeout  time.Duration
	TimedOut bool
	Earlier  bool
	Err      error
}

func (e *noAnswerError) Error() string {
	var msg string
	if e.TimedOut {
		msg = fmt.Sprintf("KMS in %s did not answer within %v", e.Region, e.Timeout)
	} else {
		msg = fmt.Sprintf("cannot reach KMS in %s: %v", e.Region, rootCause(e.Err))
	}
	if e.Earlier {
		msg += " (an earlier call; not retried yet)"
	}
	return msg
}

func (e *noAnswerError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *noAnswerError) Is(target error) bool { return target == ErrUnavailable }

// rootCause is the network error inside err ("dial tcp …: connection
// refused"), else its innermost error: the SDK's "operation error KMS: …,
// exceeded maximum number of attempts, …" prefixes say nothing new.
func rootCause(err error) error {
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case errors.As(err, &de):
		return de
	case errors.As(err, &oe):
		return oe
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// KMSError reports a failed KMS call: the operation, the key it named and,
// when KMS answered, the AWS error code (AccessDeniedException,
// DisabledException, KMSInvalidStateException, NotFoundException,
// InvalidCiphertextException, IncorrectKeyException, …). It unwraps to the
// SDK error, so errors.As with smithy.APIError and errors.Is with
// context.DeadlineExceeded work. It never holds key material.
type KMSError struct {
	Op    string // KMS operation, e.g. "Decrypt"
	KeyID string // the key ARN or alias ARN sent to KMS
	Code  string // AWS error code; empty when KMS never answered
	Err   error
}

// maxErrorMessage bounds the part of KMS's (or a key server's) error
// message that Error repeats: the message is the remote party's text.
const maxErrorMessage = 1024

func (e *KMSError) Error() string {
	if e.Code != "" {
		var ae smithy.APIError
		msg := ""
		if errors.As(e.Err, &ae) && ae.ErrorMessage() != "" {
			msg = ": " + safetext.Bounded(ae.ErrorMessage(), maxErrorMessage)
		}
		return fmt.Sprintf("awskms: %s with %s: %s%s", e.Op, e.KeyID, e.Code, msg)
	}
	var na *noAnswerError
	if errors.As(e.Err, &na) { // without the SDK's "operation error KMS: Op," prefix
		return fmt.Sprintf("awskms: %s with %s: %v", e.Op, e.KeyID, na)
	}
	return fmt.Sprintf("awskms: %s with %s: %v", e.Op, e.KeyID, e.Err)
}

func (e *KMSError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true for the AWS error codes of a
// KMS that cannot serve now (a noAnswerError inside matches by itself), and
// errors.Is(err, ErrAccessDenied) for AccessDeniedException and
// errors.Is(err, ErrUnauthenticated) for refused credentials.
func (e *KMSError) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return unavailableCodes[e.Code]
	case ErrAccessDenied:
		return e.Code == "AccessDeniedException"
	case ErrUnauthenticated:
		return unauthenticatedCodes[e.Code]
	}
	return false
}

// kmsError wraps an SDK error, extracting its AWS error code.
func kmsError(op, keyID string, err error) error {
	e := &KMSError{Op: op, KeyID: keyID, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	return e
}
