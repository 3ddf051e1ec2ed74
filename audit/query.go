package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
)

// Filter selects entries for Query; zero fields match everything. Key
// matches the resource "key/<Key>" (or Key itself), Action matches
// case-insensitively.
type Filter struct {
	Principal string
	Key       string
	Action    string
	Since     time.Time
	Until     time.Time
}

func (f Filter) match(e Entry) bool {
	if e.Type == TypeCheckpoint {
		return false
	}
	if f.Principal != "" && e.Principal != f.Principal {
		return false
	}
	if f.Key != "" && e.Resource != f.Key && e.Resource != "key/"+f.Key {
		return false
	}
	if f.Action != "" && !strings.EqualFold(e.Action, f.Action) {
		return false
	}
	if f.Since.IsZero() && f.Until.IsZero() {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil {
		return false
	}
	return (f.Since.IsZero() || !t.Before(f.Since)) && (f.Until.IsZero() || t.Before(f.Until))
}

// Query yields the records of a log that match f, in order, for
// "keystack audit show". It does not verify the chain (use Verify); a line
// that cannot be parsed ends the sequence with an error naming it.
func Query(r io.Reader, f Filter) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		br := bufio.NewReaderSize(r, MaxLineSize)
		for line := 1; ; line++ {
			raw, err := readLine(br)
			if err == io.EOF || errors.Is(err, errTorn) {
				return // a torn last line is not an entry
			}
			var e Entry
			if err == nil {
				e, _, err = parseLine(nil, raw, [32]byte{})
			}
			if err != nil {
				yield(Entry{}, fmt.Errorf("audit: line %d: %w", line, err))
				return
			}
			if f.match(e) && !yield(e, nil) {
				return
			}
		}
	}
}

var errTorn = errors.New("last line is incomplete (no newline): a failed append")

// readLine returns one newline-terminated line without its newline; a final
// line without newline or a line over MaxLineSize is an error.
func readLine(br *bufio.Reader) ([]byte, error) {
	raw, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("line longer than %d bytes", MaxLineSize)
	case err == io.EOF && len(raw) == 0:
		return nil, io.EOF
	case err == io.EOF:
		return nil, errTorn
	case err != nil:
		return nil, err
	}
	return bytes.TrimSuffix(raw, []byte("\n")), nil
}
