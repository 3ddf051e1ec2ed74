package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Wire constants of the ESDK message format (data-format/message-header.md).
const (
	contentNonFramed = 1
	contentFramed    = 2

	v1TypeCustomerAED = 0x80
	gcmIVLen          = 12
	gcmTagLen         = 16
	commitKeyLen      = 32

	// defaultMaxEncryptedDataKeys bounds the EDK count of a parsed header
	// when the caller does not choose a limit.
	defaultMaxEncryptedDataKeys = 32
	// MaxHeaderLength bounds the total size of a header we read or write.
	MaxHeaderLength = 1 << 20
	// DefaultFrameLength is the frame length written when none is chosen.
	DefaultFrameLength = 65536
	// DefaultMaxFrameLength is the largest frame length Decrypt accepts and
	// Encrypt writes unless the caller raises the limit (MaxFrameLength in
	// DecryptOptions and EncryptOptions): 64 times DefaultFrameLength and
	// 1,024 times the official SDKs' 4 KiB default. A reader holds whole
	// frames until their tags verify, so this bounds the memory a hostile
	// message can make it use.
	DefaultMaxFrameLength = 4 << 20
	// defaultMaxNonFramedLength bounds a non-framed body (content type 1, v1
	// or v2), which is authenticated only at its end and so is held whole.
	// A larger MaxFrameLength raises it to that value.
	defaultMaxNonFramedLength = 16 << 20
)

// zeroIV is the v2 header authentication IV. Headers share it; nothing
// writes to it (Header.AuthIV returns a copy).
var zeroIV [gcmIVLen]byte

// Header is a parsed message header. Its fields are what the message
// stores; nothing in it is secret.
type Header struct {
	Version           int    // 1 or 2
	Suite             Suite  // algorithm suite
	MessageID         []byte // 16 bytes (v1) or 32 bytes (v2)
	EncryptionContext map[string]string
	EncryptedDataKeys []EncryptedDataKey
	ContentType       int    // 1 non-framed, 2 framed
	FrameLength       uint32 // 0 for non-framed
	HeaderLength      int    // bytes, including the authentication IV and tag

	commitKey []byte // v2 suite data
	body      []byte // serialized header body: the header-auth AAD prefix
	authIV    []byte // v1 stored IV; v2 uses zeros
	authTag   []byte
}

// PlaintextLength returns the plaintext length of an unsigned framed
// message of messageLen bytes with header h, which its length alone
// determines: every frame but the last is full, and the final frame holds
// 0 to FrameLength bytes. It returns -1 for a signed or non-framed
// message and for a length no such message can have. The result is a
// prediction until the message has been read and authenticated.
func (h *Header) PlaintextLength(messageLen int64) int64 {
	if h.Suite.Signed() || h.ContentType != contentFramed || h.FrameLength == 0 {
		return -1
	}
	fl := int64(h.FrameLength)
	rest := messageLen - int64(h.HeaderLength) - finalPrefix - gcmTagLen
	if rest < 0 {
		return -1
	}
	regular := rest / (regularPrefix + fl + gcmTagLen)
	final := rest - regular*(regularPrefix+fl+gcmTagLen)
	if final > fl {
		return -1
	}
	return regular*fl + final
}

// CommitKey returns the header's key commitment (v2 suite data), nil for v1.
func (h *Header) CommitKey() []byte { return bytes.Clone(h.commitKey) }

// AuthIV returns the header authentication IV: stored in v1, all zeros in v2.
func (h *Header) AuthIV() []byte { return bytes.Clone(h.authIV) }

// AuthTag returns the header authentication tag.
func (h *Header) AuthTag() []byte { return bytes.Clone(h.authTag) }

// ParseError describes why a header is malformed. It matches ErrMalformed
// with errors.Is.
type ParseError struct {
	Field  string // the header field being read
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrMalformed, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

func malformed(field, format string, args ...any) error {
	return &ParseError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// InspectOptions bounds Inspect.
type InspectOptions struct {
	// MaxEncryptedDataKeys is the most EDKs accepted; 0 means 32.
	MaxEncryptedDataKeys int
}

// Inspect parses a message header without any key, reading exactly the
// header's bytes from src. Nothing is authenticated: use it to show a
// message's suite, context and wrapping keys, never to trust them. Any
// known suite is parsed, legacy ones included.
func Inspect(src io.Reader, opts InspectOptions) (*Header, error) {
	return parseHeader(src, opts.MaxEncryptedDataKeys)
}

// hdrReader reads exact field sizes from an untrusted stream, recording
// every byte and refusing to exceed MaxHeaderLength in total.
type hdrReader struct {
	r   io.Reader
	mem []byte // when r is nil: the unread bytes of an in-memory message
	raw []byte
}

func (h *hdrReader) next(field string, n int) ([]byte, error) {
	b, err := h.read(n)
	if err != nil {
		return nil, fieldError(field, err)
	}
	return b, nil
}

// errHeaderTooLong is read's error when a field would take the header past
// MaxHeaderLength; fieldError names the field.
var errHeaderTooLong = errors.New("header too long")

// read is next without the field's name: errors are named by the caller
// (fieldError), so that a field name built by concatenation costs nothing
// on a header that parses.
func (h *hdrReader) read(n int) ([]byte, error) {
	if len(h.raw)+n > MaxHeaderLength {
		return nil, errHeaderTooLong
	}
	start := len(h.raw)
	if h.r == nil {
		if len(h.mem) < n {
			return nil, io.ErrUnexpectedEOF
		}
		h.raw, h.mem = append(h.raw, h.mem[:n]...), h.mem[n:]
		return h.raw[start:], nil
	}
	h.raw = append(h.raw, make([]byte, n)...)
	if _, err := io.ReadFull(h.r, h.raw[start:]); err != nil {
		return nil, err
	}
	return h.raw[start:], nil
}

// fieldError is the error for a failed read of field.
func fieldError(field string, err error) error {
	switch {
	case err == errHeaderTooLong:
		return malformed(field, "header longer than %d bytes", MaxHeaderLength)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: in header field %s: %w", ErrTruncated, field, io.ErrUnexpectedEOF)
	}
	return err
}

func (h *hdrReader) u8(field string) (int, error) {
	b, err := h.next(field, 1)
	if err != nil {
		return 0, err
	}
	return int(b[0]), nil
}

func (h *hdrReader) u16(field string) (int, error) {
	b, err := h.next(field, 2)
	if err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint16(b)), nil
}

func (h *hdrReader) u32(field string) (uint32, error) {
	b, err := h.next(field, 4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// bytes16 reads a u16 length followed by that many bytes.
func (h *hdrReader) bytes16(field string) ([]byte, error) {
	l, err := h.read(2)
	if err != nil {
		return nil, fieldError(field+" length", err)
	}
	return h.next(field, int(binary.BigEndian.Uint16(l)))
}

// parseHeader reads and checks a v1 or v2 header from src, consuming
// exactly its bytes (ESDK data-format/message-header.md).
func parseHeader(src io.Reader, maxEDKs int) (*Header, error) {
	return parseHeaderFrom(&hdrReader{r: src}, maxEDKs)
}

// parseHeaderBytes is parseHeader of a message held in memory; the Header
// holds copies of its bytes, as parseHeader's does.
func parseHeaderBytes(msg []byte, maxEDKs int) (*Header, error) {
	return parseHeaderFrom(&hdrReader{mem: msg}, maxEDKs)
}

func parseHeaderFrom(h *hdrReader, maxEDKs int) (*Header, error) {
	if maxEDKs <= 0 {
		maxEDKs = defaultMaxEncryptedDataKeys
	}
	// The Header and the first 512 bytes of its wire form, which its byte
	// fields point into, in one allocation.
	mem := &struct {
		Header
		raw [512]byte
	}{}
	h.raw = mem.raw[:0]
	hdr := &mem.Header
	var err error
	if hdr.Version, err = h.u8("version"); err != nil {
		return nil, err
	}
	idLen := 32
	switch hdr.Version {
	case 2:
	case 1:
		idLen = 16
		t, err := h.u8("type")
		if err != nil {
			return nil, err
		}
		if t != v1TypeCustomerAED {
			return nil, malformed("type", "0x%02X, want 0x80", t)
		}
	default:
		return nil, malformed("version", "%d is not 1 or 2", hdr.Version)
	}
	s, err := h.u16("suite")
	if err != nil {
		return nil, err
	}
	hdr.Suite = Suite(s)
	if !hdr.Suite.Known() || (hdr.Version == 2) != hdr.Suite.Committing() {
		return nil, fmt.Errorf("%w: %v in a version %d header", ErrUnsupportedSuite, hdr.Suite, hdr.Version)
	}
	if hdr.MessageID, err = h.next("message ID", idLen); err != nil {
		return nil, err
	}
	if err := parseContextField(h, hdr); err != nil {
		return nil, err
	}
	if err := parseEDKs(h, hdr, maxEDKs); err != nil {
		return nil, err
	}
	if err := parseContentFields(h, hdr); err != nil {
		return nil, err
	}
	hdr.body = h.raw
	if hdr.Version == 1 {
		if hdr.authIV, err = h.next("header IV", gcmIVLen); err != nil {
			return nil, err
		}
	} else {
		hdr.authIV = zeroIV[:] // read only, as in a header sealHeader writes
	}
	if hdr.authTag, err = h.next("header tag", gcmTagLen); err != nil {
		return nil, err
	}
	hdr.body = h.raw[:len(hdr.body)]
	hdr.HeaderLength = len(h.raw)
	return hdr, nil
}

// parseContextField reads the AAD field: kvLen u16 ‖ serialized context
// (framework/structures.md#serialization), which must fill kvLen exactly.
func parseContextField(h *hdrReader, hdr *Header) error {
	kv, err := h.bytes16("encryption context")
	if err != nil {
		return err
	}
	ec, err := parseContext(kv)
	if err != nil {
		return err
	}
	_, hasPub := ec[PublicKeyContextKey]
	if hasPub != hdr.Suite.Signed() {
		return malformed("encryption context", "%s present=%v for suite %v", PublicKeyContextKey, hasPub, hdr.Suite)
	}
	hdr.EncryptionContext = ec
	return nil
}

func parseContext(kv []byte) (map[string]string, error) {
	if len(kv) == 0 {
		return map[string]string{}, nil
	}
	if len(kv) < 2 {
		return nil, malformed("encryption context", "%d bytes cannot hold a pair count", len(kv))
	}
	count := int(binary.BigEndian.Uint16(kv))
	if count == 0 {
		return nil, malformed("encryption context", "non-empty field with zero pairs")
	}
	// Keys and values are substrings of one copy of the field: one
	// allocation instead of two per pair.
	all := string(kv)
	ec := make(map[string]string, min(count, len(kv)/4))
	rest := kv[2:]
	for i := 0; i < count; i++ {
		var k, v []byte
		var ok bool
		if k, rest, ok = cut16(rest); !ok {
			return nil, malformed("encryption context", "pair %d key overruns the field", i)
		}
		if v, rest, ok = cut16(rest); !ok {
			return nil, malformed("encryption context", "pair %d value overruns the field", i)
		}
		if !utf8.Valid(k) || !utf8.Valid(v) {
			return nil, malformed("encryption context", "pair %d is not valid UTF-8", i)
		}
		if _, dup := ec[string(k)]; dup {
			return nil, malformed("encryption context", "duplicate key in pair %d", i)
		}
		ec[substr(all, kv, k)] = substr(all, kv, v)
	}
	if len(rest) != 0 {
		return nil, malformed("encryption context", "%d bytes after the last pair", len(rest))
	}
	return ec, nil
}

// substr returns the part of all, string(kv), that sub holds: sub is a
// subslice of kv, so its offset in kv is the capacity it lacks.
func substr(all string, kv, sub []byte) string {
	off := cap(kv) - cap(sub)
	return all[off : off+len(sub)]
}

// cut16 splits a u16-length-prefixed field off b.
func cut16(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// parseEDKs reads the EDK count and entries. The count is checked against
// the limit before any entry is read.
func parseEDKs(h *hdrReader, hdr *Header, maxEDKs int) error {
	n, err := h.u16("EDK count")
	if err != nil {
		return err
	}
	if n == 0 {
		return malformed("EDK count", "zero encrypted data keys")
	}
	if n > maxEDKs {
		return fmt.Errorf("%w: header has %d, limit %d", ErrTooManyEncryptedDataKeys, n, maxEDKs)
	}
	hdr.EncryptedDataKeys = make([]EncryptedDataKey, 0, n)
	for i := 0; i < n; i++ {
		id, err := h.bytes16("EDK provider ID")
		if err != nil {
			return err
		}
		if !utf8.Valid(id) {
			return malformed("EDK provider ID", "EDK %d provider ID is not valid UTF-8", i)
		}
		info, err := h.bytes16("EDK provider info")
		if err != nil {
			return err
		}
		ct, err := h.bytes16("EDK ciphertext")
		if err != nil {
			return err
		}
		hdr.EncryptedDataKeys = append(hdr.EncryptedDataKeys, EncryptedDataKey{
			ProviderID: string(id), ProviderInfo: info, Ciphertext: ct,
		})
	}
	return nil
}

// parseContentFields reads content type and frame length, plus v1's
// reserved and IV-length fields and v2's commit key.
func parseContentFields(h *hdrReader, hdr *Header) error {
	var err error
	if hdr.ContentType, err = h.u8("content type"); err != nil {
		return err
	}
	// Both versions allow both content types (data-format/message-header.md,
	// content type); the official C, Python and Java SDKs still write v2
	// non-framed messages when asked for frame length 0.
	if hdr.ContentType != contentFramed && hdr.ContentType != contentNonFramed {
		return malformed("content type", "%d is not 1 (non-framed) or 2 (framed)", hdr.ContentType)
	}
	if hdr.Version == 1 {
		res, err := h.u32("reserved")
		if err != nil {
			return err
		}
		if res != 0 {
			return malformed("reserved", "must be zero")
		}
		ivLen, err := h.u8("IV length")
		if err != nil {
			return err
		}
		if ivLen != gcmIVLen {
			return malformed("IV length", "%d, want %d", ivLen, gcmIVLen)
		}
	}
	if hdr.FrameLength, err = h.u32("frame length"); err != nil {
		return err
	}
	if (hdr.ContentType == contentFramed) != (hdr.FrameLength != 0) {
		return malformed("frame length", "%d with content type %d", hdr.FrameLength, hdr.ContentType)
	}
	if hdr.Version == 2 {
		if hdr.commitKey, err = h.next("commit key", commitKeyLen); err != nil {
			return err
		}
	}
	return nil
}

// serializeBodyV2 appends a v2 header body (everything before the tag)
// to dst. It checks every field fits its length prefix and the header
// fits MaxHeaderLength.
func serializeBodyV2(dst []byte, hdr *Header) ([]byte, error) {
	if n := len(hdr.EncryptedDataKeys); n == 0 || n > 0xFFFF {
		return nil, fmt.Errorf("%w: it produced %d encrypted data keys", ErrKeyring, n)
	}
	if dst == nil {
		dst = make([]byte, 0, 256)
	}
	start := len(dst)
	out := append(dst, 2)
	out = binary.BigEndian.AppendUint16(out, uint16(hdr.Suite))
	out = append(out, hdr.MessageID...)
	// The context's length prefix is filled in once it is written.
	ecAt := len(out)
	out = append(out, 0, 0)
	var err error
	if out, err = appendContext(out, hdr.EncryptionContext); err != nil {
		return nil, err
	}
	ecLen := len(out) - ecAt - 2
	if ecLen > 0xFFFF {
		return nil, fmt.Errorf("%w: serialized context of %d bytes exceeds 65535", ErrInvalidContext, ecLen)
	}
	binary.BigEndian.PutUint16(out[ecAt:], uint16(ecLen))
	out = binary.BigEndian.AppendUint16(out, uint16(len(hdr.EncryptedDataKeys)))
	for _, e := range hdr.EncryptedDataKeys {
		for _, f := range [][]byte{[]byte(e.ProviderID), e.ProviderInfo, e.Ciphertext} {
			if len(f) > 0xFFFF {
				return nil, fmt.Errorf("%w: encrypted data key field of %d bytes exceeds 65535", ErrKeyring, len(f))
			}
			out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
			out = append(out, f...)
		}
	}
	out = append(out, byte(hdr.ContentType))
	out = binary.BigEndian.AppendUint32(out, hdr.FrameLength)
	out = append(out, hdr.commitKey...)
	if n := len(out) - start + gcmTagLen; n > MaxHeaderLength {
		return nil, fmt.Errorf("%w: header of %d bytes exceeds %d", ErrMalformed, n, MaxHeaderLength)
	}
	return out[start:], nil
}
