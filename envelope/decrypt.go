package envelope

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// DecryptOptions configures Decrypt. The zero value accepts only message
// format v2 with at most 32 EDKs.
type DecryptOptions struct {
	// AllowLegacy permits the non-committing message format v1 suites.
	AllowLegacy bool
	// Context is the reproduced encryption context. A pair whose key is in
	// the header must match it (else ErrContextMismatch); the other pairs
	// are the required-context pairs the encrypter left out of the header.
	Context map[string]string
	// MaxEncryptedDataKeys bounds the header's EDK count; 0 means 32.
	MaxEncryptedDataKeys int
	// MaxFrameLength bounds the frame length a header may declare, checked
	// before any keyring runs (ErrFrameTooLarge); 0 means
	// DefaultMaxFrameLength. Non-framed bodies are accepted up to the larger
	// of this and 16 MiB. The reader holds up to 32 MiB of
	// frames in flight, and at least two whole frames, so raise it only for
	// messages from a writer you trust with that much memory.
	MaxFrameLength int
	// Concurrency is the number of goroutines opening frames; 0 means GOMAXPROCS.
	Concurrency int
	// RequireUnsigned refuses messages of signed suites with ErrSigned as
	// soon as the header is parsed, before any keyring runs (the ESDK's
	// decrypt-unsigned mode).
	RequireUnsigned bool
}

// unlocked is an authenticated header with its message keys.
type unlocked struct {
	hdr      *Header
	codec    *frameCodec
	full     map[string]string // header context plus required pairs
	required map[string]string // pairs authenticated but not stored

	// What openHeader allocates once per message, in this one allocation:
	// codec points to frames, materials went to the keyring, and scratch
	// is openInMemory's frame.
	frames    frameCodec
	materials DecryptionMaterials
	scratch   frameTask
}

// Decrypt reads and authenticates the header of the message in src and
// unwraps its data key with kr before returning. The returned Reader
// yields the plaintext; it releases no frame's plaintext before that
// frame's tag verifies and, for signed suites, holds the final frame's
// plaintext until the signature verifies. Errors are sticky. Call Close
// when abandoning the Reader early.
func Decrypt(ctx context.Context, src io.Reader, kr Keyring, opts DecryptOptions) (*Reader, error) {
	ra, start, left, canReadAt := position(src)
	br := buffered(src)
	u, err := unlockHeader(ctx, br, kr, opts)
	if err != nil {
		return nil, err
	}
	r, err := newReader(br, u, opts)
	if err == nil && canReadAt && left >= preadMin && !u.hdr.Suite.Signed() && u.hdr.ContentType == contentFramed {
		r.useReadAt(ra, start+int64(u.hdr.HeaderLength))
	}
	return r, err
}

// newReader returns the Reader of the body after u's header in br.
func newReader(br byteSource, u *unlocked, opts DecryptOptions) (*Reader, error) {
	// Frame buffers are allocated whole: the frame length is bounded by
	// MaxFrameLength, and growing them as bytes arrive left garbage behind.
	r := &Reader{hdr: u.hdr, src: br, codec: u.codec, open: u.codec.open, conc: concurrency(opts.Concurrency), depth: 1,
		frameCap: finalPrefix + int(u.hdr.FrameLength) + gcmTagLen, maxNonFramed: maxNonFramed(opts.MaxFrameLength)}
	if m, ok := br.(*bytes.Reader); ok {
		// No frame can be longer than what is left of the message.
		r.frameCap = min(r.frameCap, max(int(m.Len()), finalPrefix+gcmTagLen))
	}
	if u.hdr.Suite.Signed() {
		var err error
		if r.pub, r.h, err = newVerifier(u.hdr.Suite, u.hdr.EncryptionContext); err != nil {
			return nil, err
		}
		r.h.Write(u.hdr.body)
		if u.hdr.Version == 1 {
			r.h.Write(u.hdr.authIV)
		}
		r.h.Write(u.hdr.authTag)
	}
	return r, nil
}

// DecryptBytes decrypts one whole message; bytes after it are an error
// (ErrTrailingData).
func DecryptBytes(ctx context.Context, msg []byte, kr Keyring, opts DecryptOptions) ([]byte, *Header, error) {
	hdr, err := parseHeaderBytes(msg, opts.MaxEncryptedDataKeys)
	if err != nil {
		return nil, nil, err
	}
	u, err := unlockParsed(ctx, hdr, kr, opts)
	if err != nil {
		return nil, nil, err
	}
	if !u.hdr.Suite.Signed() {
		// The whole body is at hand: frames open straight into the output.
		out, err := u.openInMemory(msg[u.hdr.HeaderLength:], maxNonFramed(opts.MaxFrameLength))
		if err != nil {
			return nil, nil, err
		}
		return out, u.hdr, nil
	}
	r, err := newReader(bytes.NewReader(msg[hdr.HeaderLength:]), u, opts)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	out := make([]byte, 0, len(msg))
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			return out, r.hdr, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// unlockHeader parses the header, checks suite and context, asks the
// keyring for the data key, and verifies commitment and header tag
// (client-apis/decrypt.md steps 1-3).
func unlockHeader(ctx context.Context, src io.Reader, kr Keyring, opts DecryptOptions) (*unlocked, error) {
	hdr, err := parseHeader(src, opts.MaxEncryptedDataKeys)
	if err != nil {
		return nil, err
	}
	return unlockParsed(ctx, hdr, kr, opts)
}

// unlockParsed is unlockHeader after the parse.
func unlockParsed(ctx context.Context, hdr *Header, kr Keyring, opts DecryptOptions) (*unlocked, error) {
	if err := checkFrameLength(hdr, opts.MaxFrameLength); err != nil {
		return nil, err
	}
	if opts.RequireUnsigned && hdr.Suite.Signed() {
		return nil, fmt.Errorf("%w: %v is signed and unsigned messages are required", ErrSigned, hdr.Suite)
	}
	u, dataKey, err := openHeader(ctx, hdr, kr, opts)
	clear(dataKey)
	return u, err
}

// maxFrameLength is the frame length limit for a MaxFrameLength option.
func maxFrameLength(opt int) int {
	if opt <= 0 {
		return DefaultMaxFrameLength
	}
	return opt
}

// maxNonFramed is the non-framed body limit for a MaxFrameLength option.
func maxNonFramed(opt int) int {
	return max(defaultMaxNonFramedLength, maxFrameLength(opt))
}

// checkFrameLength refuses a header whose frame length exceeds the limit,
// before a keyring is asked for anything: a reader holds whole frames.
func checkFrameLength(hdr *Header, opt int) error {
	if lim := maxFrameLength(opt); int64(hdr.FrameLength) > int64(lim) {
		return fmt.Errorf("%w: the header declares frames of %d bytes, above MaxFrameLength %d", ErrFrameTooLarge, hdr.FrameLength, lim)
	}
	return nil
}

// openHeader unwraps the data key of a parsed header and authenticates the
// header with it. The caller must clear the returned data key.
func openHeader(ctx context.Context, hdr *Header, kr Keyring, opts DecryptOptions) (*unlocked, []byte, error) {
	if !hdr.Suite.Committing() && !opts.AllowLegacy {
		return nil, nil, fmt.Errorf("%w: %v is a legacy suite and AllowLegacy is off", ErrUnsupportedSuite, hdr.Suite)
	}
	full, required, err := mergeContext(hdr.EncryptionContext, opts.Context)
	if err != nil {
		return nil, nil, err
	}
	u := &unlocked{hdr: hdr, full: full, required: required}
	m := &u.materials
	m.Suite, m.EncryptionContext = hdr.Suite, full
	if err := kr.OnDecrypt(ctx, m, hdr.EncryptedDataKeys); err != nil {
		return nil, nil, err
	}
	if m.DataKey == nil {
		return nil, nil, &NoDecryptKeyError{}
	}
	key, commit, err := deriveKeys(hdr.Suite, m.DataKey, hdr.MessageID)
	if err != nil {
		clear(m.DataKey)
		return nil, nil, err
	}
	defer clear(key)
	aead, err := newGCM(key)
	if err == nil {
		err = verifyHeader(aead, hdr, commit, required)
	}
	if err != nil {
		clear(m.DataKey)
		return nil, nil, err
	}
	u.frames = frameCodec{aead: aead, messageID: hdr.MessageID, frameLen: int(hdr.FrameLength)}
	u.codec = &u.frames
	return u, m.DataKey, nil
}

// mergeContext checks the reproduced context against the stored one and
// returns the full context and the required (unstored) pairs, nil when
// there are none. full is stored itself when every reproduced pair is
// stored (the common case: the caller repeats the context it encrypted
// with): the parse made that map, and keyrings must not modify it.
func mergeContext(stored, reproduced map[string]string) (full, required map[string]string, err error) {
	if storedHasAll(stored, reproduced) {
		return stored, nil, nil // saves two maps per message
	}
	full = make(map[string]string, len(stored)+len(reproduced))
	required = map[string]string{}
	for k, v := range stored {
		full[k] = v
	}
	for k, v := range reproduced {
		sv, ok := stored[k]
		switch {
		case ok && sv != v:
			return nil, nil, fmt.Errorf("%w: value of key %q differs from the message's", ErrContextMismatch, k)
		case !ok && k == PublicKeyContextKey:
			return nil, nil, fmt.Errorf("%w: key %q is reserved", ErrContextMismatch, k)
		case !ok:
			full[k], required[k] = v, v
		}
	}
	return full, required, nil
}

// storedHasAll reports whether every pair of reproduced is in stored.
func storedHasAll(stored, reproduced map[string]string) bool {
	for k, v := range reproduced {
		if sv, ok := stored[k]; !ok || sv != v {
			return false
		}
	}
	return true
}

// isEOF reports whether err means the input ended.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
