package kmswire

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ContentType is the media type of every request and response body.
const ContentType = "application/x-amz-json-1.1"

// TargetPrefix prefixes the operation name in X-Amz-Target.
const TargetPrefix = "TrentService."

// Error is a KMS error response: {"__type": Code, "message": Message} with
// HTTP status Status.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// serverErrors are the error names KMS answers with a 5xx status.
var serverErrors = map[string]int{
	"KMSInternalException":       http.StatusInternalServerError,
	"KeyUnavailableException":    http.StatusInternalServerError,
	"DependencyTimeoutException": http.StatusServiceUnavailable,
	"ServiceUnavailable":         http.StatusServiceUnavailable,
}

// Errorf returns the Error named code with a formatted message; its status
// is 400 unless code is a server-side error.
func Errorf(code, format string, args ...any) *Error {
	status, ok := serverErrors[code]
	if !ok {
		status = http.StatusBadRequest
	}
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WriteError writes err as a KMS error response. An error that is not an
// *Error becomes a KMSInternalException whose message does not repeat it
// (it may name files or keys).
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = Errorf("KMSInternalException", "internal error")
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
}

// WriteJSON writes a successful response body.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", ContentType)
	_ = json.NewEncoder(w).Encode(v)
}
