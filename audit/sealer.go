package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Sealer makes and checks the entries of a chain kept somewhere other than
// a file, such as one chain per key-server replica in a database table: the
// same Entry encoding, keyed chain hash and checkpoint MAC as the file log,
// so that one format is verified everywhere. The store around it supplies
// what a file gives the Log (order, sequence numbers, anchors). A Sealer is
// not safe for concurrent use.
type Sealer struct {
	key    Key
	ch     *chain
	values bool
	ctx    ctxHasher
}

// NewSealer returns a Sealer for the chain keyed by key. With
// logContextValues, entries carry encryption contexts in clear as well as
// their HMAC (Options.LogContextValues).
func NewSealer(key Key, logContextValues bool) (*Sealer, error) {
	if err := key.check(); err != nil {
		return nil, err
	}
	return &Sealer{key: key, ch: newChain(key.MAC), values: logContextValues,
		ctx: ctxHasher{mac: hmac.New(sha256.New, key.MAC)}}, nil
}

// Entry converts a record into the entry a Log would write for it, without
// Time, Seq, Prev and Hash. It fails for a record type callers may not
// append.
func (s *Sealer) Entry(r Record) (Entry, error) {
	switch r.Type {
	case "", TypeDecision, TypeOperation, TypeNote:
	default:
		return Entry{}, fmt.Errorf("audit: record type %q is not %q, %q or %q", r.Type, TypeDecision, TypeOperation, TypeNote)
	}
	return newEntry(r, s.ctx.hexSum, s.values), nil
}

// Seal sets e.Prev to prev and e.Hash to the entry's chain hash and returns
// the stored line (without newline) and that hash. The caller sets e.Time
// and e.Seq first. It fails for a line of MaxLineSize bytes or more.
func (s *Sealer) Seal(e *Entry, prev [32]byte) ([]byte, [32]byte, error) {
	line, h, err := e.sealTo(s.ch, nil, prev, true)
	if err != nil {
		return nil, prev, err
	}
	return line[:len(line)-1], h, nil
}

// Check verifies that line (without newline) is the canonical encoding of
// entry wantSeq following the entry whose hash is prev, with a valid chain
// hash (and, for a checkpoint, a valid MAC), and returns the entry and its
// hash. Its error says what is wrong, as Verify's reasons do.
func (s *Sealer) Check(line []byte, prev [32]byte, wantSeq uint64) (Entry, [32]byte, error) {
	if len(line) >= MaxLineSize {
		return Entry{}, prev, fmt.Errorf("line longer than %d bytes", MaxLineSize)
	}
	e, h, err := parseLine(s.ch, line, prev)
	if err != nil {
		return e, prev, err
	}
	if err := checkEntry(e, h, prev, wantSeq, s.key); err != nil {
		return e, prev, err
	}
	return e, h, nil
}

// MAC returns HMAC-SHA256 under the audit key of a label and a message,
// for stores that authenticate their own anchors (the label keeps their
// MACs apart from the chain's).
func (s *Sealer) MAC(label string, msg []byte) []byte {
	m := hmac.New(sha256.New, s.key.MAC)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}

// Checkpoint returns the sealed checkpoint entry seq for the chain head
// (the hash of entry seq-1), with its MAC, as the file log writes them,
// and its hash.
func (s *Sealer) Checkpoint(seq uint64, head [32]byte, time string, final bool) ([]byte, [32]byte) {
	e := Entry{Time: time, Seq: seq, Type: TypeCheckpoint, Head: hex.EncodeToString(head[:]), Final: final,
		MAC: hex.EncodeToString(checkpointMAC(s.key.MAC, checkpointMessage(seq, head, final)))}
	line, h, err := s.Seal(&e, head)
	if err != nil {
		panic("audit: checkpoint cannot fail to encode: " + err.Error())
	}
	return line, h
}

// SignAnchor returns a with the MAC that Anchor.Authentic checks.
func (s *Sealer) SignAnchor(a Anchor) Anchor {
	a.MAC = hex.EncodeToString(anchorMAC(s.key.MAC, a))
	return a
}
