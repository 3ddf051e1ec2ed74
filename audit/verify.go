package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// MinMACKeySize is the shortest HMAC key accepted.
const MinMACKeySize = 32

// Key verifies checkpoints: an HMAC-SHA256 key, or the Ed25519 public key of
// the log's signing key. Set exactly one.
type Key struct {
	MAC       []byte
	PublicKey ed25519.PublicKey
}

func (k Key) check() error {
	switch {
	case len(k.MAC) > 0 && k.PublicKey != nil:
		return fmt.Errorf("%w: set either a MAC key or a public key, not both", ErrNoKey)
	case len(k.MAC) > 0 && len(k.MAC) < MinMACKeySize:
		return fmt.Errorf("%w: MAC key of %d bytes, at least %d", ErrNoKey, len(k.MAC), MinMACKeySize)
	case len(k.MAC) == 0 && len(k.PublicKey) != ed25519.PublicKeySize:
		return ErrNoKey
	}
	return nil
}

// VerifyReport summarizes a verified log. Head is the hex chain hash of the
// last entry; keep it elsewhere to detect a log cut back to an earlier
// closing checkpoint.
type VerifyReport struct {
	Entries           int // all lines, checkpoints included
	Records           int // decisions and operations
	Checkpoints       int
	LastSeq           uint64
	LastCheckpointSeq uint64
	Head              string
	Sealed            bool // ends with a closing checkpoint
}

// Verify reads a whole log and checks the chain, the canonical encoding of
// every line, and every checkpoint's MAC or signature. It returns a
// *TamperError (ErrTampered) naming the first bad line; a log whose last
// entry is not a closing checkpoint yields a *TamperError that also matches
// ErrTruncated. The report describes the log up to the first problem.
func Verify(r io.Reader, key Key) (*VerifyReport, error) {
	if err := key.check(); err != nil {
		return nil, err
	}
	rep := &VerifyReport{}
	var prev [32]byte
	var last Entry
	br := bufio.NewReaderSize(r, MaxLineSize)
	for line := 1; ; line++ {
		raw, err := readLine(br)
		if err == io.EOF {
			return rep, sealedOrTruncated(rep, last, line)
		}
		bad := func(reason string) (*VerifyReport, error) {
			return rep, &TamperError{Line: line, Seq: rep.LastSeq + 1, Reason: reason}
		}
		if err != nil {
			return bad(err.Error())
		}
		e, h, err := parseLine(raw, prev)
		if err != nil {
			return bad(err.Error())
		}
		if err := checkEntry(e, h, prev, rep.LastSeq+1, key, true); err != nil {
			return bad(err.Error())
		}
		prev, last = h, e
		rep.Entries++
		rep.LastSeq, rep.Head = e.Seq, e.Hash
		if e.Type == TypeCheckpoint {
			rep.Checkpoints++
			rep.LastCheckpointSeq = e.Seq
		} else {
			rep.Records++
		}
	}
}

func sealedOrTruncated(rep *VerifyReport, last Entry, line int) error {
	if rep.Entries > 0 && last.Type == TypeCheckpoint && last.Final {
		rep.Sealed = true
		return nil
	}
	return &TamperError{Line: line, Seq: rep.LastSeq + 1, Truncated: true,
		Reason: fmt.Sprintf("log does not end with a closing checkpoint: %d entries after checkpoint seq %d are unsealed (truncated, or the log was not closed)",
			rep.LastSeq-rep.LastCheckpointSeq, rep.LastCheckpointSeq)}
}

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
		return nil, errors.New("last line is incomplete (no newline): truncated")
	case err != nil:
		return nil, err
	}
	return bytes.TrimSuffix(raw, []byte("\n")), nil
}

// checkEntry returns nil if e, whose recomputed chain hash is h, is the
// valid successor of prev at wantSeq; checkpoints are authenticated when
// checkAuth is set.
func checkEntry(e Entry, h, prev [32]byte, wantSeq uint64, key Key, checkAuth bool) error {
	if e.Seq != wantSeq {
		return fmt.Errorf("sequence number %d, want %d (record deleted, inserted or reordered)", e.Seq, wantSeq)
	}
	if e.Prev != hex.EncodeToString(prev[:]) {
		return errors.New("previous-hash link does not match the preceding entry")
	}
	stored, err := hex.DecodeString(e.Hash)
	if err != nil || !hmac.Equal(stored, h[:]) {
		return errors.New("entry hash does not match its contents (edited)")
	}
	switch e.Type {
	case TypeDecision, TypeOperation:
		return nil
	case TypeCheckpoint:
	default:
		return fmt.Errorf("unknown entry type %q", e.Type)
	}
	if e.Head != e.Prev {
		return errors.New("checkpoint head is not the preceding entry's hash")
	}
	if checkAuth && !checkpointValid(e, prev, key) {
		return errors.New("checkpoint MAC or signature is invalid")
	}
	return nil
}

func checkpointValid(e Entry, head [32]byte, key Key) bool {
	msg := checkpointMessage(e.Seq, head, e.Final)
	if len(key.MAC) > 0 {
		got, err := hex.DecodeString(e.MAC)
		return err == nil && hmac.Equal(got, checkpointMAC(key.MAC, msg))
	}
	sig, err := hex.DecodeString(e.Sig)
	return err == nil && ed25519.Verify(key.PublicKey, msg, sig)
}

func checkpointMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
