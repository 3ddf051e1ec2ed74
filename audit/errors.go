package audit

import (
	"errors"
	"fmt"
)

// Errors, one per failure class.
var (
	// ErrTampered is matched by every *TamperError.
	ErrTampered = errors.New("audit: log has been tampered with")
	// ErrTruncated is matched by a *TamperError for a log that does not end
	// with its closing checkpoint (records may have been removed).
	ErrTruncated = errors.New("audit: log is truncated or unsealed")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: log is closed")
	// ErrWrite is matched when a record could not be written or synced;
	// the log stays failed and refuses every later Append.
	ErrWrite = errors.New("audit: write failed")
	// ErrNoKey is returned when no MAC or signing key is configured.
	ErrNoKey = errors.New("audit: no checkpoint key")
)

// TamperError names the first bad line of a log.
type TamperError struct {
	Line      int    // 1-based line number
	Seq       uint64 // sequence number expected at that line
	Reason    string
	Truncated bool
}

func (e *TamperError) Error() string {
	return fmt.Sprintf("%v: line %d (seq %d): %s", ErrTampered, e.Line, e.Seq, e.Reason)
}

// Is matches ErrTampered, and ErrTruncated for a truncated log.
func (e *TamperError) Is(target error) bool {
	return target == ErrTampered || (e.Truncated && target == ErrTruncated)
}
