package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"unicode/utf8"
)

// Entry types.
const (
	TypeDecision   = "decision"
	TypeOperation  = "op"
	TypeCheckpoint = "checkpoint"
	// TypeNote is written by the log itself, for example when it removes
	// the torn bytes of an append that failed.
	TypeNote = "note"
)

// Entry is one line of the log, as stored. Its JSON encoding, produced by
// encoding/json from this struct, is the canonical form that is hashed.
type Entry struct {
	Time        string            `json:"time"`
	Seq         uint64            `json:"seq"`
	Type        string            `json:"type"`
	Principal   string            `json:"principal,omitempty"`
	Action      string            `json:"action,omitempty"`
	Resource    string            `json:"resource,omitempty"`
	KeyVersion  int               `json:"key_version,omitempty"`
	Decision    string            `json:"decision,omitempty"`
	Implicit    bool              `json:"implicit,omitempty"`
	Statements  []string          `json:"statements,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Outcome     string            `json:"outcome,omitempty"`
	RequestID   string            `json:"request_id,omitempty"`
	AuthMethod  string            `json:"auth_method,omitempty"`
	Source      string            `json:"source,omitempty"`
	MessageID   string            `json:"message_id,omitempty"`
	ContextHMAC string            `json:"context_hmac,omitempty"`
	Context     map[string]string `json:"context,omitempty"`
	Head        string            `json:"head,omitempty"`
	MAC         string            `json:"mac,omitempty"`
	Sig         string            `json:"sig,omitempty"`
	Final       bool              `json:"final,omitempty"`
	Prev        string            `json:"prev"`
	Hash        string            `json:"hash,omitempty"`
}

// MaxLineSize bounds one stored line; longer lines are rejected on write
// and reported as tampering on read.
const MaxLineSize = 64 << 10

// canonical returns the bytes that are hashed: the entry without Hash.
func (e Entry) canonical() ([]byte, error) {
	e.Hash = ""
	return json.Marshal(e)
}

// chain computes the keyed chain hash
//
//	hash_n = HMAC-SHA256(chainKey, hash_{n-1} ‖ canonical_n)
//
// so that no entry can be made or changed without the audit key. It is not
// safe for concurrent use.
type chain struct {
	mac     hash.Hash
	scratch [2 * sha256.Size]byte // heap-held, so the interface calls below do not allocate
}

func newChain(macKey []byte) *chain {
	k := hmac.New(sha256.New, macKey)
	k.Write([]byte("keystack-audit-chain-v2"))
	return &chain{mac: hmac.New(sha256.New, k.Sum(nil))}
}

func (c *chain) hash(prev [32]byte, canonical []byte) [32]byte {
	c.mac.Reset()
	copy(c.scratch[:], prev[:])
	c.mac.Write(c.scratch[:sha256.Size])
	c.mac.Write(canonical)
	var out [32]byte
	copy(out[:], c.mac.Sum(c.scratch[:0]))
	return out
}

// seal sets e.Prev and e.Hash and returns the encoded line with its newline.
func (e *Entry) seal(c *chain, prev [32]byte) ([]byte, [32]byte, error) {
	return e.sealTo(c, nil, prev, true)
}

// sealTo is seal appending the line to buf, which it may reuse; e.Prev and
// e.Hash are set only with fill (the committer discards the entry).
func (e *Entry) sealTo(c *chain, buf []byte, prev [32]byte, fill bool) ([]byte, [32]byte, error) {
	start := len(buf)
	buf = appendEntry(buf, e, &prev, false)
	h := c.hash(prev, buf[start:])
	buf = appendHash(buf, h)
	if n := len(buf) - start; n >= MaxLineSize {
		return buf[:start], prev, fmt.Errorf("audit: record of %d bytes exceeds %d", n, MaxLineSize)
	}
	if fill {
		e.Prev, e.Hash = hex.EncodeToString(prev[:]), hex.EncodeToString(h[:])
	}
	return append(buf, '\n'), h, nil
}

// parseLine decodes a line (without newline) strictly and returns the entry
// and its recomputed chain hash given prev. It fails if the line is not
// exactly the canonical encoding of the entry it holds.
func parseLine(c *chain, line []byte, prev [32]byte) (Entry, [32]byte, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, prev, errors.New("not a valid entry")
	}
	re, err := json.Marshal(e)
	if err != nil || !bytes.Equal(re, line) {
		return e, prev, errors.New("not in canonical form")
	}
	if c == nil { // Query: no key, no hash
		return e, prev, nil
	}
	canon, _ := e.canonical()
	return e, c.hash(prev, canon), nil
}

// checkpointMessage is what a checkpoint's MAC or signature covers.
func checkpointMessage(seq uint64, head [32]byte, final bool) []byte {
	msg := []byte("keystack-audit-checkpoint-v1\x00")
	msg = binary.BigEndian.AppendUint64(msg, seq)
	msg = append(msg, head[:]...)
	if final {
		return append(msg, 1)
	}
	return append(msg, 0)
}

// appendContextBytes appends an unambiguous encoding of a context to b:
// pairs sorted by key, each field prefixed by its u32 length.
func appendContextBytes(b []byte, ec map[string]string) []byte {
	var arr [8]string
	keys := arr[:0]
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = binary.BigEndian.AppendUint32(b, uint32(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(ec[k])))
		b = append(b, ec[k]...)
	}
	return b
}

// toValidUTF8 replaces invalid UTF-8 in the fields a caller supplies. JSON
// cannot carry such bytes (encoding/json writes U+FFFD), so a line holding
// them would not decode back to itself, and Verify, and the next Open of
// the log, would take it for tampering.
func (e *Entry) toValidUTF8() {
	for _, p := range []*string{&e.Principal, &e.Action, &e.Resource, &e.Decision, &e.Reason, &e.Outcome, &e.RequestID, &e.AuthMethod, &e.Source} {
		*p = validUTF8(*p)
	}
	if slices.ContainsFunc(e.Statements, invalidUTF8) {
		st := make([]string, len(e.Statements))
		for i, v := range e.Statements {
			st[i] = validUTF8(v)
		}
		e.Statements = st
	}
	for k, v := range e.Context {
		if invalidUTF8(k) || invalidUTF8(v) {
			ctx := make(map[string]string, len(e.Context))
			for k, v := range e.Context {
				ctx[validUTF8(k)] = validUTF8(v)
			}
			e.Context = ctx
			break
		}
	}
}

func invalidUTF8(s string) bool { return !utf8.ValidString(s) }

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
