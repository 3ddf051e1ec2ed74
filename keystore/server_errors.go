package keystore

import "errors"

// Errors of the key server's credentials (CreateCredential, ListCredentials, RevokeCredential).
var (
	// ErrCredentialLimit is returned when a principal already holds the
	// most active credentials allowed (maxCredentialsPerPrincipal).
	ErrCredentialLimit = errors.New("keystore: credential limit reached for the principal")
	// ErrCredentialNotFound is returned for an access key ID the store
	// does not hold (never issued, or revoked).
	ErrCredentialNotFound = errors.New("keystore: credential not found")
)
