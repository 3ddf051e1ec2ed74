package hsm

import "github.com/keystack/keystack/internal/pkcs11token"

// Errors returned by this package, one per failure class, for errors.Is.
// No error text ever contains a PIN or key material. A failed PKCS#11
// call names the C function and its CKR_ code ("hsm: C_EncryptInit:
// CKR_KEY_HANDLE_INVALID") and unwraps to the pkcs11.Error of
// github.com/miekg/pkcs11 and to the matching sentinel below, if any.
var (
	// ErrInvalidURI is returned for a PKCS#11 URI that does not parse, that
	// names no object where a key is needed, or that carries an attribute
	// keystack refuses (pin-value).
	ErrInvalidURI = pkcs11token.ErrInvalidURI
	// ErrModule is returned when the PKCS#11 module cannot be loaded or initialized.
	ErrModule = pkcs11token.ErrModule
	// ErrTokenNotFound is returned when no token, or more than one, matches the URI.
	ErrTokenNotFound = pkcs11token.ErrTokenNotFound
	// ErrKeyNotFound is returned when no key object has the requested label
	// (and ID), or more than one does. It also matches
	// keyring.ErrKeyNotFound.
	ErrKeyNotFound = pkcs11token.ErrKeyNotFound
	// ErrKeyExists is returned when generating a key whose label is taken.
	ErrKeyExists = pkcs11token.ErrKeyExists
	// ErrPINIncorrect is returned when the token rejects the PIN. keystack
	// never retries a rejected PIN, so a token's lockout counter moves at
	// most once per token opened.
	ErrPINIncorrect = pkcs11token.ErrPINIncorrect
	// ErrPINLocked is returned when the token's user PIN is locked.
	ErrPINLocked = pkcs11token.ErrPINLocked
	// ErrNoPIN is returned when no PIN source is configured.
	ErrNoPIN = pkcs11token.ErrNoPIN
	// ErrInvalidKey is returned for unusable key parameters (size, name, version).
	ErrInvalidKey = pkcs11token.ErrInvalidKey
	// ErrClosed is returned when using a Backend, or a keyring it made, after Close.
	ErrClosed = pkcs11token.ErrClosed
	// ErrUnavailable is matched by a failed call whose CKR_ code says the
	// device or token is gone or failing (CKR_DEVICE_ERROR,
	// CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, …): the key may be fine,
	// the HSM is not there.
	ErrUnavailable = pkcs11token.ErrUnavailable
)
