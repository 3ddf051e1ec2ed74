package pkcs11token

import (
	"errors"
	"strings"

	"github.com/miekg/pkcs11"

	"github.com/keystack/keystack/keyring"
)

// Errors returned by this package, one per failure class, for errors.Is.
// No error text ever contains a PIN or key material.
var (
	// ErrInvalidURI is returned for a PKCS#11 URI that does not parse or that
	// carries an attribute keystack refuses (pin-value).
	ErrInvalidURI = errors.New("hsm: invalid PKCS#11 URI")
	// ErrModule is returned when the PKCS#11 module cannot be loaded or initialized.
	ErrModule = errors.New("hsm: cannot load PKCS#11 module")
	// ErrTokenNotFound is returned when no token, or more than one, matches the URI.
	ErrTokenNotFound = errors.New("hsm: token not found")
	// ErrKeyNotFound is returned when no key object has the requested label
	// (and ID), or more than one does. It also matches
	// keyring.ErrKeyNotFound.
	ErrKeyNotFound error = &classError{msg: "hsm: key not found", class: keyring.ErrKeyNotFound}
	// ErrKeyExists is returned when generating a key whose label is taken.
	ErrKeyExists = errors.New("hsm: key label already in use")
	// ErrPINIncorrect is returned when the token rejects the PIN. keystack
	// never retries a rejected PIN, so a token's lockout counter moves at
	// most once per Open.
	ErrPINIncorrect = errors.New("hsm: PIN incorrect")
	// ErrPINLocked is returned when the token's user PIN is locked.
	ErrPINLocked = errors.New("hsm: PIN locked")
	// ErrNoPIN is returned when no PIN source is configured.
	ErrNoPIN = errors.New("hsm: no PIN: set pin-source in the URI, KEYSTACK_PKCS11_PIN, or a prompt")
	// ErrInvalidKey is returned for unusable key parameters (size, name, version).
	ErrInvalidKey = errors.New("hsm: invalid key parameters")
	// ErrClosed is returned when using a Token after Close.
	ErrClosed = errors.New("hsm: token closed")
	// ErrUnavailable is matched by a CallError whose code says the device
	// or token is gone or failing (CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED,
	// CKR_TOKEN_NOT_PRESENT, …): the key may be fine, the HSM is not there.
	// It also matches keyring.ErrKeyUnavailable.
	ErrUnavailable error = &classError{msg: "hsm: token unavailable", class: keyring.ErrKeyUnavailable}
)

// classError is a sentinel of this package that also matches a class
// of keyring's, for errors.Is.
type classError struct {
	msg   string
	class error
}

func (e *classError) Error() string { return e.msg }
func (e *classError) Unwrap() error { return e.class }

// CallError is a failed PKCS#11 call. Its text names the C function and the
// CKR_ code ("hsm: C_EncryptInit: CKR_KEY_HANDLE_INVALID"); it unwraps to
// the pkcs11.Error and, for PIN failures, to ErrPINIncorrect or ErrPINLocked.
type CallError struct {
	Call string // C function name, e.g. "C_Login"
	Code uint   // CKR_ return value
}

func (e *CallError) Error() string {
	// pkcs11.Error prints "pkcs11: 0x%X: CKR_NAME"; keep only the name.
	s := pkcs11.Error(e.Code).Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s[i+2:], "CKR_") {
		s = s[i+2:]
	}
	return "hsm: " + e.Call + ": " + s
}

// Unwrap returns the pkcs11.Error and the matching sentinel, if any.
func (e *CallError) Unwrap() []error {
	errs := []error{pkcs11.Error(e.Code)}
	switch e.Code {
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE:
		errs = append(errs, ErrPINIncorrect)
	case pkcs11.CKR_PIN_LOCKED:
		errs = append(errs, ErrPINLocked)
	case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED:
		errs = append(errs, ErrUnavailable)
	}
	return errs
}

// callErr names the C call that failed. Non-PKCS#11 errors pass through.
func callErr(call string, err error) error {
	if err == nil {
		return nil
	}
	var rv pkcs11.Error
	if errors.As(err, &rv) {
		return &CallError{Call: call, Code: uint(rv)}
	}
	return err
}

// recoverable reports whether err means the pool's sessions or login are
// gone (closed behind our back, token re-inserted) so that reopening them
// and retrying once may succeed. PIN failures are never recoverable.
func recoverable(err error) bool {
	var ce *CallError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_KEY_HANDLE_INVALID,
		pkcs11.CKR_OBJECT_HANDLE_INVALID:
		return true
	}
	return false
}
