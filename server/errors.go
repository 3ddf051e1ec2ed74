package server

import (
	"errors"

	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// kmsError maps keystore and policy errors to the KMS error a client sees.
// Messages never carry key material, secrets or file paths.
func kmsError(err error) error {
	var ke *kmswire.Error
	if errors.As(err, &ke) {
		return ke
	}
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			return kmswire.Errorf(m.code, "%s", m.msg)
		}
	}
	return kmswire.Errorf("KMSInternalException", "internal error")
}

// errorMap is ordered: an audit failure is also an access denial, but
// the client must see a server failure (fail closed, retry later).
var errorMap = []struct {
	err       error
	code, msg string
}{
	{policy.ErrAuditFailed, "KMSInternalException", "the request could not be audited and was refused"},
	{keystore.ErrUnavailable, "DependencyTimeoutException", "the key store's database cannot be reached; retry later"},
	{policy.ErrAccessDenied, "AccessDeniedException", "the policy does not allow this request"},
	{keystore.ErrKeyNotFound, "NotFoundException", "key not found"},
	{serverstore.ErrAliasNotFound, "NotFoundException", "alias not found"},
	{keystore.ErrCredentialNotFound, "NotFoundException", "credential not found"},
	{serverstore.ErrAliasExists, "AlreadyExistsException", "an alias with this name already exists"},
	{keystore.ErrKeyExists, "AlreadyExistsException", "the key already exists"},
	{serverstore.ErrKeyState, "KMSInvalidStateException", "the key's state does not allow this operation"},
	{keystore.ErrKeyDisabled, "KMSInvalidStateException", "the key version cannot be used for this operation"},
	{keyring.ErrUnwrapFailed, "InvalidCiphertextException", "the ciphertext is invalid or the encryption context does not match"},
	{keyring.ErrKeyUnavailable, "KeyUnavailableException", "the key's HSM cannot be reached; retry later"},
	{serverstore.ErrInvalidAlias, "ValidationException", "invalid alias name"},
	{keystore.ErrInvalidName, "ValidationException", "invalid key ID"},
	{keystore.ErrInvalidOptions, "ValidationException", "invalid request parameters"},
	{keystore.ErrCredentialLimit, "LimitExceededException", "the principal already holds the most credentials allowed"},
	{keystore.ErrNotSupported, "UnsupportedOperationException", "this key cannot serve KMS operations"},
	{keystore.ErrLocked, "KMSInternalException", "the keystore is sealed"},
}
