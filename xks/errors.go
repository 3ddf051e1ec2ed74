package xks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// wireError is an XKS error response: {"errorName", "errorMessage"} with the
// HTTP status the specification gives the name.
type wireError struct {
	Status  int
	Name    string
	Message string
}

func (e *wireError) Error() string { return e.Name + ": " + e.Message }

// statuses maps each error name of the specification to its HTTP status.
var statuses = map[string]int{
	"ValidationException":           http.StatusBadRequest,
	"InvalidStateException":         http.StatusBadRequest,
	"InvalidCiphertextException":    http.StatusBadRequest,
	"InvalidKeyUsageException":      http.StatusBadRequest,
	"AuthenticationFailedException": http.StatusUnauthorized,
	"AccessDeniedException":         http.StatusForbidden,
	"KeyNotFoundException":          http.StatusNotFound,
	"InvalidUriPathException":       http.StatusNotFound,
	"ThrottlingException":           http.StatusTooManyRequests,
	"UnsupportedOperationException": http.StatusNotImplemented,
	"DependencyTimeoutException":    http.StatusServiceUnavailable,
	"InternalException":             http.StatusInternalServerError,
}

// errorf returns the Error named name; its message is cut to printable
// ASCII under 512 characters, as the specification requires.
func errorf(name, format string, args ...any) *wireError {
	msg := []byte(fmt.Sprintf(format, args...))
	out := msg[:0]
	for _, c := range msg {
		if c >= 0x20 && c <= 0x7e && len(out) < 500 {
			out = append(out, c)
		}
	}
	return &wireError{Status: statuses[name], Name: name, Message: string(out)}
}

// classify maps a keystore error to the XKS error a caller may see: it
// names the failure class, never a file, key material or policy text.
func classify(err error) *wireError {
	var e *wireError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, policy.ErrAccessDenied):
		return errorf("AccessDeniedException", "the keystack policy does not allow this request")
	case errors.Is(err, keystore.ErrKeyNotFound), errors.Is(err, keyring.ErrKeyNotFound):
		return errorf("KeyNotFoundException", "no such external key")
	case errors.Is(err, serverstore.ErrKeyState), errors.Is(err, keystore.ErrKeyDisabled):
		return errorf("InvalidStateException", "the external key is disabled")
	case errors.Is(err, keystore.ErrNotSupported), errors.Is(err, keyring.ErrNotSupported):
		return errorf("InvalidKeyUsageException", "the external key does not support this operation")
	case errors.Is(err, keyring.ErrUnwrapFailed):
		return errorf("InvalidCiphertextException", "the ciphertext, initialization vector, additional authenticated data or authentication tag is invalid")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf("DependencyTimeoutException", "the key backend did not answer in time")
	}
	return errorf("InternalException", "the key backend failed")
}

func writeError(w http.ResponseWriter, e *wireError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorName": e.Name, "errorMessage": e.Message})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
