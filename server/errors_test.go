package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/keystore"
)

// TestUnavailableIsRetryable5xx: a storage that cannot reach its database
// (wrapped keystore.ErrUnavailable) answers a retryable 503
// DependencyTimeoutException, never a 4xx a client would not retry, and
// does not repeat the cause (it may name hosts).
func TestUnavailableIsRetryable5xx(t *testing.T) {
	err := kmsError(fmt.Errorf("keystore: read: %w: pgstorage: poll: dial tcp db.internal:5432: refused", keystore.ErrUnavailable))
	var ke *kmswire.Error
	if !errors.As(err, &ke) || ke.Status != http.StatusServiceUnavailable || ke.Code != "DependencyTimeoutException" {
		t.Fatalf("kmsError(ErrUnavailable) = %v, want a 503 DependencyTimeoutException", err)
	}
	if got := ke.Message; got == "" || strings.Contains(got, "db.internal") {
		t.Fatalf("message %q is empty or repeats the cause", got)
	}
}

// TestHSMUnavailableIsKeyUnavailable: a PKCS#11 key whose token is gone or
// failing (hsm.ErrUnavailable, which matches keyring.ErrKeyUnavailable)
// answers KMS's retryable KeyUnavailableException, a 500, not the
// KMSInternalException of an unknown failure.
func TestHSMUnavailableIsKeyUnavailable(t *testing.T) {
	err := kmsError(fmt.Errorf("keystore: pkcs11 backend: hsm: encrypt with %q: %w", "k/v1", hsm.ErrUnavailable))
	var ke *kmswire.Error
	if !errors.As(err, &ke) || ke.Status != http.StatusInternalServerError || ke.Code != "KeyUnavailableException" {
		t.Fatalf("kmsError(hsm.ErrUnavailable) = %v, want a 500 KeyUnavailableException", err)
	}
	if strings.Contains(ke.Message, "k/v1") {
		t.Fatalf("message %q repeats the cause", ke.Message)
	}
}
