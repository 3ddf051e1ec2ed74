package keystore

import "errors"

// Errors returned by keystore and its backends, one per failure class.
var (
	// ErrInvalidKey is returned for unusable key material or key parameters.
	ErrInvalidKey = errors.New("keystore: invalid key")
	// ErrInvalidEDK is returned when an encrypted data key has the wrong shape.
	ErrInvalidEDK = errors.New("keystore: malformed encrypted data key")
	// ErrUnwrapFailed is the opaque error for an EDK that does not authenticate
	// or decrypt under the key (wrong key, wrong context, corruption).
	ErrUnwrapFailed = errors.New("keystore: data key unwrap failed")
	// ErrNoPrivateKey is returned when decrypting with a public-key-only RSA keyring.
	ErrNoPrivateKey = errors.New("keystore: no private key to decrypt with")
)
