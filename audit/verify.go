package audit

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// MinMACKeySize is the shortest HMAC key accepted.
const MinMACKeySize = 32

// Key verifies a log: the HMAC-SHA256 key it was written with.
type Key struct {
	MAC []byte
}

func (k Key) check() error {
	if len(k.MAC) < MinMACKeySize {
		return fmt.Errorf("%w: MAC key of %d bytes, at least %d", ErrNoKey, len(k.MAC), MinMACKeySize)
	}
	return nil
}

// Anchor pins a log's history: the entry with sequence number Seq has the
// chain hash Head and its line ends at byte Offset. A log that no longer
// holds that entry was truncated, replaced or rewritten. A Log reports its
// anchor (Log.Anchor, Log.Checkpoint) for its owner to keep outside the
// log; MAC, set by Log.Checkpoint, shows the anchor came from a holder of
// the audit key (see Authentic).
type Anchor struct {
	Seq    uint64 `json:"seq"`
	Head   string `json:"head"`
	Offset int64  `json:"offset"`
	Time   string `json:"time,omitempty"`
	MAC    string `json:"mac,omitempty"`
}

// head decodes a.Head; the zero anchor has the zero head.
func (a Anchor) head() ([32]byte, error) {
	var h [32]byte
	if a.Seq == 0 && a.Head == "" && a.Offset == 0 {
		return h, nil
	}
	b, err := hex.DecodeString(a.Head)
	if err != nil || len(b) != len(h) || a.Seq == 0 || a.Offset <= 0 {
		return h, fmt.Errorf("%w: seq %d, head %q, offset %d", ErrBadAnchor, a.Seq, a.Head, a.Offset)
	}
	copy(h[:], b)
	return h, nil
}

func anchorMAC(key []byte, a Anchor) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("keystack-audit-anchor-v1\x00"))
	m.Write(binary.BigEndian.AppendUint64(nil, a.Seq))
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(a.Offset)))
	m.Write([]byte(a.Head))
	return m.Sum(nil)
}

// Authentic reports whether a carries a valid MAC under key. Anyone holding
// the key can make one: it shows where an exported anchor came from, not
// that the log is intact.
func (a Anchor) Authentic(key Key) bool {
	got, err := hex.DecodeString(a.MAC)
	return err == nil && len(key.MAC) > 0 && hmac.Equal(got, anchorMAC(key.MAC, a))
}

// VerifyReport summarizes a verified log. Head is the hex chain hash of the
// last entry.
type VerifyReport struct {
	Entries           int // all complete lines, checkpoints and notes included
	Records           int // decisions and operations
	Checkpoints       int
	LastSeq           uint64
	LastCheckpointSeq uint64
	Head              string
	Size              int64 // bytes up to the end of the last complete line
	TornBytes         int64 // bytes of an incomplete last line (a failed append), not an entry
	Sealed            bool  // ends with a closing checkpoint (no writer had it open)
}

// Verify reads a whole log and checks every entry's keyed chain hash (so
// edits, insertions, deletions, reorders and forged entries are found),
// the canonical encoding of every line and every checkpoint's MAC. Each
// anchor's entry must be in the log with the anchored hash; a log that
// ends before an anchor was truncated (ErrTruncated). An incomplete last
// line is not an entry: it is reported in TornBytes, not as tampering. It
// returns a *TamperError (ErrTampered) naming the first bad line; the
// report describes the log up to it.
func Verify(r io.Reader, key Key, anchors ...Anchor) (*VerifyReport, error) {
	if err := key.check(); err != nil {
		return nil, err
	}
	for _, a := range anchors {
		if _, err := a.head(); err != nil {
			return nil, err
		}
	}
	v := &verifier{ch: newChain(key.MAC), key: key, anchors: anchors, line: 1}
	if err := v.scan(r); err != nil {
		return &v.rep, err
	}
	return &v.rep, v.reached()
}

// verifier checks a run of lines that continues the chain at prev.
type verifier struct {
	ch      *chain
	key     Key
	prev    [32]byte
	rep     VerifyReport // LastSeq and Size describe the last good entry
	line    int          // number of the next line; 0 when unknown (started at an anchor)
	anchors []Anchor
}

// scan verifies every complete line of r; an incomplete last line is
// counted in rep.TornBytes.
func (v *verifier) scan(r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxLineSize)
	for {
		raw, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return v.bad(fmt.Sprintf("line longer than %d bytes", MaxLineSize), false)
		case err == io.EOF:
			v.rep.TornBytes = int64(len(raw))
			return nil
		case err != nil:
			return fmt.Errorf("%w: read: %w", ErrWrite, err)
		}
		if err := v.entry(bytes.TrimSuffix(raw, []byte("\n"))); err != nil {
			return v.bad(err.Error(), false)
		}
		v.rep.Size += int64(len(raw))
		if v.line > 0 {
			v.line++
		}
	}
}

func (v *verifier) bad(reason string, truncated bool) error {
	return &TamperError{Line: v.line, Seq: v.rep.LastSeq + 1, Reason: reason, Truncated: truncated}
}

// entry checks one line (without its newline) and advances the chain.
func (v *verifier) entry(raw []byte) error {
	e, h, err := parseLine(v.ch, raw, v.prev)
	if err != nil {
		return err
	}
	if err := checkEntry(e, h, v.prev, v.rep.LastSeq+1, v.key); err != nil {
		return err
	}
	for _, a := range v.anchors {
		if a.Seq == e.Seq && a.Head != e.Hash {
			return fmt.Errorf("entry %d is not the anchored one (anchor head %.16s…): the log was rewritten or replaced", e.Seq, a.Head)
		}
	}
	v.prev = h
	v.rep.Entries++
	v.rep.LastSeq, v.rep.Head = e.Seq, e.Hash
	v.rep.Sealed = e.Type == TypeCheckpoint && e.Final
	switch e.Type {
	case TypeCheckpoint:
		v.rep.Checkpoints++
		v.rep.LastCheckpointSeq = e.Seq
	case TypeNote:
	default:
		v.rep.Records++
	}
	return nil
}

// reached fails if the log ends before one of the anchors.
func (v *verifier) reached() error {
	for _, a := range v.anchors {
		if a.Seq > v.rep.LastSeq {
			v.line = 0
			return v.bad(fmt.Sprintf("log ends at entry %d but the anchor of %s records entry %d: %d entries were cut off or the log was replaced by an older copy",
				v.rep.LastSeq, anchorTime(a), a.Seq, a.Seq-v.rep.LastSeq), true)
		}
	}
	return nil
}

func anchorTime(a Anchor) string {
	if a.Time == "" {
		return "unknown time"
	}
	return a.Time
}

// checkEntry returns nil if e, whose recomputed chain hash is h, is the
// valid successor of prev at wantSeq.
func checkEntry(e Entry, h, prev [32]byte, wantSeq uint64, key Key) error {
	if e.Seq != wantSeq {
		return fmt.Errorf("sequence number %d, want %d (entry deleted, inserted or reordered)", e.Seq, wantSeq)
	}
	if e.Prev != hex.EncodeToString(prev[:]) {
		return errors.New("previous-hash link does not match the preceding entry")
	}
	stored, err := hex.DecodeString(e.Hash)
	if err != nil || !hmac.Equal(stored, h[:]) {
		return errors.New("entry hash does not match its contents under the audit key (edited or forged)")
	}
	switch e.Type {
	case TypeDecision, TypeOperation, TypeNote:
		return nil
	case TypeCheckpoint:
	default:
		return fmt.Errorf("unknown entry type %q", e.Type)
	}
	if e.Head != e.Prev {
		return errors.New("checkpoint head is not the preceding entry's hash")
	}
	if !checkpointValid(e, prev, key) {
		return errors.New("checkpoint MAC is invalid")
	}
	return nil
}

func checkpointValid(e Entry, head [32]byte, key Key) bool {
	got, err := hex.DecodeString(e.MAC)
	return err == nil && hmac.Equal(got, checkpointMAC(key.MAC, checkpointMessage(e.Seq, head, e.Final)))
}

func checkpointMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
