package awskms

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

// TestKMSErrorClasses: AccessDeniedException matches ErrAccessDenied only,
// KMSInternalException ErrUnavailable only, other codes neither.
func TestKMSErrorClasses(t *testing.T) {
	for code, want := range map[string][2]bool{
		"AccessDeniedException": {true, false}, "KMSInternalException": {false, true},
		"NotFoundException": {false, false}, "": {false, false},
	} {
		err := error(&KMSError{Op: "Decrypt", KeyID: "k", Code: code, Err: errors.New(code)})
		if got := [2]bool{errors.Is(err, ErrAccessDenied), errors.Is(err, ErrUnavailable)}; got != want {
			t.Errorf("%q: (denied, unavailable) = %v, want %v", code, got, want)
		}
	}
}

// TestKMSErrorHostileMessage: the message a KMS endpoint (or a key server
// posing as one) chose reaches a terminal without control characters and
// bounded, whatever it sent.
func TestKMSErrorHostileMessage(t *testing.T) {
	hostile := "\x1b]0;owned\x07\x1b[2J" + strings.Repeat("x", 8<<20)
	err := &KMSError{Op: "Decrypt", KeyID: "k", Code: "AccessDeniedException",
		Err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: hostile}}
	msg := err.Error()
	if strings.ContainsAny(msg, "\x1b\x07") || len(msg) > maxErrorMessage+200 {
		t.Fatalf("Error() repeats the remote message raw (%d bytes): %.80q", len(msg), msg)
	}
	if !strings.Contains(msg, "AccessDeniedException") || !strings.Contains(msg, "owned") {
		t.Errorf("Error() lost the code or the message's text: %.200q", msg)
	}
}
