package envelope

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by this package, one per failure class, for errors.Is.
// No error text ever contains key material or plaintext.
var (
	// ErrAuthentication is the single opaque error for every failed
	// authentication check: header tag, frame tag, key commitment, signature.
	ErrAuthentication = errors.New("envelope: message authentication failed")
	// ErrUnsupportedSuite is returned for an unknown suite, or a legacy one
	// that the caller did not allow.
	ErrUnsupportedSuite = errors.New("envelope: unsupported or forbidden algorithm suite")
	// ErrMalformed is returned when the bytes are not a well-formed message.
	ErrMalformed = errors.New("envelope: malformed message")
	// ErrTruncated is returned when a message ends before its final frame or footer.
	ErrTruncated = errors.New("envelope: message truncated")
	// ErrTrailingData is returned when bytes follow a complete message.
	ErrTrailingData = errors.New("envelope: trailing data after message")
	// ErrNoDecryptKey is returned when no keyring could unwrap any encrypted data key.
	ErrNoDecryptKey = errors.New("envelope: no master key could decrypt the data key")
	// ErrContextMismatch is returned when the expected encryption context
	// does not match the message's.
	ErrContextMismatch = errors.New("envelope: encryption context mismatch")
	// ErrTooManyEncryptedDataKeys is returned as soon as a header's EDK count
	// exceeds the configured maximum.
	ErrTooManyEncryptedDataKeys = errors.New("envelope: too many encrypted data keys")
	// ErrFrameTooLarge is returned as soon as a header declares a frame
	// length above DecryptOptions.MaxFrameLength, or a non-framed body is
	// longer than its limit: memory for one frame is held until its tag
	// verifies, so the limit bounds what a hostile message can make a
	// reader allocate.
	ErrFrameTooLarge = errors.New("envelope: frame larger than the configured maximum")
	// ErrSigned is returned for a signed message when
	// DecryptOptions.RequireUnsigned is set.
	ErrSigned = errors.New("envelope: signed message refused")
	// ErrInvalidContext is returned for a caller-supplied context that cannot be
	// used: reserved key, invalid UTF-8, field too long.
	ErrInvalidContext = errors.New("envelope: invalid encryption context")
	// ErrInvalidOptions is returned for unusable EncryptOptions or
	// DecryptOptions (suite, frame length, required keys).
	ErrInvalidOptions = errors.New("envelope: invalid options")
	// ErrKeyring is returned when a keyring breaks the Keyring contract
	// (no data key, wrong key length, no or too many encrypted data keys).
	ErrKeyring = errors.New("envelope: keyring misbehaved")
	// ErrClosed is returned by Write or Close after Close.
	ErrClosed = errors.New("envelope: writer already closed")
	// ErrPlaintextFault is returned by an encrypting Write whose plaintext
	// could not be read: a memory fault, such as a memory-mapped file that
	// was truncated while it was being encrypted. The message is unusable.
	ErrPlaintextFault = errors.New("envelope: plaintext became unreadable while being encrypted")
)

// KeyAttempt records one master key a keyring tried on decrypt and why it failed.
type KeyAttempt struct {
	ProviderID string
	KeyName    string // key name, ARN or URI; never key material
	Err        error
}

// NoDecryptKeyError lists every key that was tried. It matches ErrNoDecryptKey
// with errors.Is and unwraps to the individual failures.
type NoDecryptKeyError struct {
	Attempts []KeyAttempt
}

func (e *NoDecryptKeyError) Error() string {
	if len(e.Attempts) == 0 {
		return ErrNoDecryptKey.Error() + " (no encrypted data key matched a configured master key)"
	}
	var b strings.Builder
	b.WriteString(ErrNoDecryptKey.Error())
	b.WriteString("; tried:")
	for _, a := range e.Attempts {
		fmt.Fprintf(&b, " [%s %s: %v]", a.ProviderID, a.KeyName, a.Err)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoDecryptKey) true.
func (e *NoDecryptKeyError) Is(target error) bool { return target == ErrNoDecryptKey }

// Unwrap returns the individual failures.
func (e *NoDecryptKeyError) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}
