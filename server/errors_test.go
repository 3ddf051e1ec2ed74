package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

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
