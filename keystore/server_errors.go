package keystore

import "errors"

// Errors of the key server's state (aliases, key states, credentials).
var (
	// ErrAliasExists is returned when creating an alias already in use.
	ErrAliasExists = errors.New("keystore: alias already exists")
	// ErrAliasNotFound is returned for an alias the store does not hold.
	ErrAliasNotFound = errors.New("keystore: alias not found")
	// ErrInvalidAlias is returned for an alias that is not "alias/" and
	// 1-250 of A-Z a-z 0-9 / _ -, or that starts with the reserved "alias/aws/".
	ErrInvalidAlias = errors.New("keystore: invalid alias name")
	// ErrKeyState is returned when a key's server state forbids the
	// operation: it is disabled, or pending deletion.
	ErrKeyState = errors.New("keystore: key state forbids the operation")
	// ErrCredentialLimit is returned when a principal already holds the
	// most active credentials allowed (maxCredentialsPerPrincipal).
	ErrCredentialLimit = errors.New("keystore: credential limit reached for the principal")
	// ErrCredentialNotFound is returned for an access key ID the store
	// does not hold (never issued, or revoked).
	ErrCredentialNotFound = errors.New("keystore: credential not found")
)
