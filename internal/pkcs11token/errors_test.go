package pkcs11token

import (
	"errors"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/keystack/keystack/keyring"
)

// A call that failed because the device or token is gone or failing
// matches ErrUnavailable and keyring.ErrKeyUnavailable (the key server
// answers KeyUnavailableException); a generic failure matches neither.
func TestCallErrorUnavailable(t *testing.T) {
	for _, code := range []uint{pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED} {
		err := error(&CallError{Call: "C_EncryptInit", Code: code})
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, keyring.ErrKeyUnavailable) {
			t.Errorf("%v: does not match ErrUnavailable and keyring.ErrKeyUnavailable", err)
		}
	}
	if err := error(&CallError{Call: "C_Login", Code: pkcs11.CKR_GENERAL_ERROR}); errors.Is(err, keyring.ErrKeyUnavailable) {
		t.Errorf("%v matches keyring.ErrKeyUnavailable", err)
	}
}
