package awskms

import (
	"errors"
	"testing"
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
