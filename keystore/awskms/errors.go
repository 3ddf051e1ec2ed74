package awskms

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
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
)

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

func (e *KMSError) Error() string {
	if e.Code != "" {
		var ae smithy.APIError
		msg := ""
		if errors.As(e.Err, &ae) && ae.ErrorMessage() != "" {
			msg = ": " + ae.ErrorMessage()
		}
		return fmt.Sprintf("awskms: %s with %s: %s%s", e.Op, e.KeyID, e.Code, msg)
	}
	return fmt.Sprintf("awskms: %s with %s: %v", e.Op, e.KeyID, e.Err)
}

func (e *KMSError) Unwrap() error { return e.Err }

// kmsError wraps an SDK error, extracting its AWS error code.
func kmsError(op, keyID string, err error) error {
	e := &KMSError{Op: op, KeyID: keyID, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	return e
}
