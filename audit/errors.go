package audit

import (
	"errors"
	"fmt"
)

// Errors, one per failure class.
var (
	// ErrTampered is matched by every *TamperError.
	ErrTampered = errors.New("audit: log has been tampered with")
	// ErrTruncated is matched by a *TamperError for a log that is shorter
	// than an anchor says it was, or missing (entries were removed).
	ErrTruncated = errors.New("audit: log is truncated")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: log is closed")
	// ErrWrite is matched when a record could not be written or synced;
	// the log stays failed and refuses every later Append.
	ErrWrite = errors.New("audit: write failed")
	// ErrNoKey is returned when no MAC or signing key is configured.
	ErrNoKey = errors.New("audit: no audit key")
	// ErrBadAnchor is returned for an anchor that cannot be one (a head
	// that is not 32 hex bytes, seq 0 with a head).
	ErrBadAnchor = errors.New("audit: malformed anchor")
)

// TamperError names the first bad line of a log.
type TamperError struct {
	Line      int    // 1-based line number; 0 when not known (a check that started at an anchor)
	Seq       uint64 // sequence number expected at that line
	Reason    string
	Truncated bool
	// AnchorLost says the anchor bounding the log's end is missing or
	// damaged, so how much was cut from the end is unknown; Seq is then
	// the last anchor still known.
	AnchorLost bool
}

func (e *TamperError) Error() string {
	if e.AnchorLost {
		return fmt.Sprintf("%v: its anchor is lost (last known at entry %d): %s", ErrTampered, e.Seq, e.Reason)
	}
	if e.Line == 0 {
		return fmt.Sprintf("%v: at entry %d: %s", ErrTampered, e.Seq, e.Reason)
	}
	return fmt.Sprintf("%v: line %d (seq %d): %s", ErrTampered, e.Line, e.Seq, e.Reason)
}

// Is matches ErrTampered, and ErrTruncated for a truncated log.
func (e *TamperError) Is(target error) bool {
	return target == ErrTampered || (e.Truncated && target == ErrTruncated)
}
