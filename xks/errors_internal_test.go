package xks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestClassifyStatuses: every error name the specification lists has
// its HTTP status, and the errors no request can provoke on demand map
// to theirs: a backend past its deadline is DependencyTimeoutException
// (503), any other backend failure InternalException (500) whose message
// does not repeat the cause.
func TestClassifyStatuses(t *testing.T) {
	spec := map[string]int{
		"ValidationException": 400, "InvalidStateException": 400, "InvalidCiphertextException": 400,
		"InvalidKeyUsageException": 400, "AuthenticationFailedException": 401, "AccessDeniedException": 403,
		"KeyNotFoundException": 404, "InvalidUriPathException": 404, "ThrottlingException": 429,
		"UnsupportedOperationException": 501, "DependencyTimeoutException": 503, "InternalException": 500,
	}
	if len(statuses) != len(spec) {
		t.Errorf("%d error names, the specification lists %d", len(statuses), len(spec))
	}
	for name, status := range spec {
		if e := errorf(name, "m"); e.Status != status || e.Name != name {
			t.Errorf("%s: status %d, want %d", name, e.Status, status)
		}
	}
	if e := classify(fmt.Errorf("hsm: C_Encrypt: %w", context.DeadlineExceeded)); e.Name != "DependencyTimeoutException" || e.Status != http.StatusServiceUnavailable {
		t.Errorf("deadline: %+v", e)
	}
	e := classify(errors.New("hsm: /secret/path/token.db: CKR_DEVICE_ERROR"))
	if e.Name != "InternalException" || e.Status != http.StatusInternalServerError || strings.Contains(e.Message, "secret") {
		t.Errorf("backend failure: %+v", e)
	}
}
