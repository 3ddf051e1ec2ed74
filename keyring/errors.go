package keyring

import "errors"

// Errors returned by keyrings and the backends built on them, one per failure class.
var (
	// ErrInvalidKey is returned for unusable key material or key parameters.
	ErrInvalidKey = errors.New("keyring: invalid key")
	// ErrInvalidEDK is returned when an encrypted data key has the wrong shape.
	ErrInvalidEDK = errors.New("keyring: malformed encrypted data key")
	// ErrUnwrapFailed is the opaque error for an EDK that does not authenticate
	// or decrypt under the key (wrong key, wrong context, corruption).
	ErrUnwrapFailed = errors.New("keyring: data key unwrap failed")
	// ErrNoPrivateKey is returned when decrypting with a public-key-only RSA keyring.
	ErrNoPrivateKey = errors.New("keyring: no private key to decrypt with")
	// ErrKeyNotFound is matched by a backend's error for a key its
	// reference names but the backend does not hold (a token object
	// destroyed, say), so callers that know no backend can tell it from
	// a failing backend.
	ErrKeyNotFound = errors.New("keyring: key not found in its backend")

	// ErrKeyUnavailable is matched by a backend's error when the device or
	// service that holds the key cannot be reached or is failing (an HSM
	// token removed or in error): the key may be fine, and a retry later
	// may succeed.
	ErrKeyUnavailable = errors.New("keyring: the key's backend is unavailable")

	// ErrNotSupported is returned for an operation the key's kind does not
	// allow, such as rotating an imported RSA key.
	ErrNotSupported = errors.New("keyring: operation not supported for this key")
)
