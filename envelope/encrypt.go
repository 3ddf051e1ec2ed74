package envelope

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
)

// EncryptOptions configures Encrypt. The zero value is usable.
type EncryptOptions struct {
	// Suite is SuiteCommitted (default) or SuiteCommittedSigned.
	Suite Suite
	// FrameLength is the plaintext bytes per frame, 1..MaxFrameLength; 0 means DefaultFrameLength.
	FrameLength int
	// MaxFrameLength is the largest FrameLength accepted (up to 2^32-1); 0
	// means DefaultMaxFrameLength, the limit readers apply by default, so
	// that a message written with larger frames is not refused by them
	// unless they raise their limit too.
	MaxFrameLength int
	// Context is the encryption context, authenticated with the message.
	Context map[string]string
	// RequiredContextKeys lists keys of Context that are authenticated but
	// not stored in the header: the decrypter must supply them again
	// (ESDK framework/required-encryption-context-cmm.md).
	RequiredContextKeys []string
	// Concurrency is the number of goroutines sealing frames; 0 means GOMAXPROCS.
	Concurrency int
	// MaxEncryptedDataKeys, when positive, refuses to write a message
	// whose keyring produced more encrypted data keys (ErrTooManyEncryptedDataKeys),
	// as the ESDK's max-encrypted-data-keys setting does on encrypt.
	MaxEncryptedDataKeys int
	// PlaintextLength, when positive, declares the exact plaintext length of
	// a streamed message up front (the ESDK's plaintext length hint), so that
	// caching keyrings can apply byte limits. The writer then refuses to
	// encrypt more or fewer bytes. EncryptBytes sets it itself.
	PlaintextLength int64
}

// sealed is everything a writer needs once the keyring has run.
type sealed struct {
	hdr    *Header
	header []byte
	codec  *frameCodec
	sig    *signer

	// What prepareEncrypt needs once per message, in this one allocation:
	// hdr, codec and the message ID point here, materials went to the
	// keyring, frame is sealSerial's, and headerBuf holds the header's
	// bytes when they fit (as they do for a few data keys).
	built     Header
	frames    frameCodec
	materials EncryptionMaterials
	messageID [32]byte
	frame     frameTask
	headerBuf [256]byte
}

// Encrypt returns a writer that encrypts what is written to it into a
// message format v2 message on dst. The keyring is called before Encrypt
// returns; the header is written on the first Write or on Close, in one
// Write call to dst of its own; Writer.Header returns it parsed. Close
// writes the final frame and, for SuiteCommittedSigned, the signature
// footer; it must be called, and waits for all sealing goroutines.
func Encrypt(ctx context.Context, dst io.Writer, kr Keyring, opts EncryptOptions) (*Writer, error) {
	declared := opts.PlaintextLength
	if declared <= 0 {
		declared = -1
	}
	s, err := prepareEncrypt(ctx, kr, opts, declared, false)
	if err != nil {
		return nil, err
	}
	w := newWriter(dst, s, opts.Concurrency)
	w.declared = declared
	return w, nil
}

// EncryptBytes encrypts plaintext into one message. Keyrings see its real
// length in EncryptionMaterials.PlaintextLength. Small messages are sealed
// straight into the output on the calling goroutine; larger ones go
// through the parallel pipeline.
func EncryptBytes(ctx context.Context, plaintext []byte, kr Keyring, opts EncryptOptions) ([]byte, error) {
	s, err := prepareEncrypt(ctx, kr, opts, int64(len(plaintext)), true)
	if err != nil {
		return nil, err
	}
	fl := s.codec.frameLen
	frames := len(plaintext)/fl + 1
	size := len(s.header) + len(plaintext) + frames*(finalPrefix+gcmTagLen)
	if s.sig != nil {
		size += 2 + p384FixedSigLen
	}
	if frames <= serialFrames || concurrency(opts.Concurrency) == 1 {
		return sealSerial(s, plaintext, make([]byte, 0, size))
	}
	out := bytes.NewBuffer(make([]byte, 0, size))
	w := newWriter(out, s, opts.Concurrency)
	w.declared = int64(len(plaintext))
	if _, err := w.Write(plaintext); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// serialFrames is the most frames EncryptBytes seals without goroutines:
// below it, starting workers costs more than it saves.
const serialFrames = 4

// sealSerial appends the whole message to out:
// header, frames sealed in place into out (the same framing the writer
// produces) and, when signed, the footer.
func sealSerial(s *sealed, plaintext, out []byte) ([]byte, error) {
	out = append(out, s.header...)
	fl := s.codec.frameLen
	for seq := uint32(1); ; seq++ {
		out = slices.Grow(out, finalPrefix+min(fl, len(plaintext))+gcmTagLen)
		t := &s.frame
		*t = frameTask{seq: seq, kind: kindRegular, buf: out[len(out):cap(out)]}
		// The last frame is the final one, full when the length is an
		// exact multiple of the frame length (as the writer does).
		if len(plaintext) <= fl {
			t.kind = kindFinal
		}
		t.src = plaintext[:min(fl, len(plaintext))]
		plaintext = plaintext[len(t.src):]
		s.codec.seal(t)
		if s.sig != nil {
			s.sig.h.Write(t.buf)
		}
		out = out[:len(out)+len(t.buf)]
		if t.kind == kindFinal {
			break
		}
	}
	if s.sig == nil {
		return out, nil
	}
	f, err := s.sig.footer()
	return append(out, f...), err
}

// prepareEncrypt checks the options, runs the keyring and builds the
// authenticated header (data-format/message-header.md, version 2.0).
// borrowContext is splitContext's borrow: set when the header does not
// outlive the caller's call.
func prepareEncrypt(ctx context.Context, kr Keyring, opts EncryptOptions, ptLen int64, borrowContext bool) (*sealed, error) {
	suite, frameLen, err := checkEncryptOptions(opts)
	if err != nil {
		return nil, err
	}
	full, required, err := splitContext(opts.Context, opts.RequiredContextKeys, borrowContext && !suite.Signed())
	if err != nil {
		return nil, err
	}
	s := new(sealed)
	if suite.Signed() {
		var pub string
		if s.sig, pub, err = newSigner(); err != nil {
			return nil, err
		}
		full[PublicKeyContextKey] = pub
	}
	m := &s.materials
	*m = EncryptionMaterials{Suite: suite, EncryptionContext: full, PlaintextLength: ptLen}
	if err := kr.OnEncrypt(ctx, m); err != nil {
		return nil, err
	}
	if m.DataKey == nil {
		return nil, fmt.Errorf("%w: no data key generated", ErrKeyring)
	}
	defer clear(m.DataKey)
	if n := len(m.EncryptedDataKeys); opts.MaxEncryptedDataKeys > 0 && n > opts.MaxEncryptedDataKeys {
		return nil, fmt.Errorf("%w: the keyring produced %d, limit %d", ErrTooManyEncryptedDataKeys, n, opts.MaxEncryptedDataKeys)
	}
	hdr := &s.built
	*hdr = Header{Version: 2, Suite: suite, MessageID: s.messageID[:], ContentType: contentFramed,
		FrameLength: uint32(frameLen), EncryptedDataKeys: m.EncryptedDataKeys,
		EncryptionContext: storedContext(full, required)}
	if _, err := rand.Read(hdr.MessageID); err != nil {
		return nil, err
	}
	var aead cipher.AEAD
	if s.header, aead, err = sealHeader(s.headerBuf[:0], hdr, m.DataKey, required); err != nil {
		return nil, err
	}
	s.frames = frameCodec{aead: aead, messageID: hdr.MessageID, frameLen: frameLen}
	s.hdr, s.codec = hdr, &s.frames
	if s.sig != nil {
		s.sig.h.Write(s.header)
	}
	return s, nil
}

func checkEncryptOptions(opts EncryptOptions) (Suite, int, error) {
	suite := opts.Suite
	if suite == 0 {
		suite = SuiteCommitted
	}
	if !suite.Committing() {
		return 0, 0, fmt.Errorf("%w: %v cannot be written, only %v or %v", ErrUnsupportedSuite, suite, SuiteCommitted, SuiteCommittedSigned)
	}
	fl := opts.FrameLength
	if fl == 0 {
		fl = DefaultFrameLength
	}
	if fl < 1 || int64(fl) > math.MaxUint32 {
		return 0, 0, fmt.Errorf("%w: frame length %d outside 1..2^32-1", ErrInvalidOptions, fl)
	}
	if lim := maxFrameLength(opts.MaxFrameLength); fl > lim {
		return 0, 0, fmt.Errorf("%w: frame length %d above MaxFrameLength %d, which readers apply by default", ErrInvalidOptions, fl, lim)
	}
	return suite, fl, nil
}

// splitContext checks the caller's context and picks out the required
// pairs (nil when there are none). The reserved public-key entry is
// refused. full is ec itself when borrow is set and ec is not empty, else
// a copy: a signed message adds the public key to it, and a Writer's
// Header, which holds it, outlives the call. Keyrings must not modify it,
// so EncryptBytes, which returns no Header, lends them the caller's map
// for the length of the call and spares the copy.
func splitContext(ec map[string]string, requiredKeys []string, borrow bool) (full, required map[string]string, err error) {
	if _, ok := ec[PublicKeyContextKey]; ok {
		return nil, nil, fmt.Errorf("%w: key %q is reserved", ErrInvalidContext, PublicKeyContextKey)
	}
	if err := checkContext(ec); err != nil {
		return nil, nil, err
	}
	full = ec
	if !borrow || len(ec) == 0 {
		full = make(map[string]string, len(ec)+1)
		maps.Copy(full, ec)
	}
	if len(requiredKeys) == 0 {
		return full, nil, nil
	}
	required = make(map[string]string, len(requiredKeys))
	for _, k := range requiredKeys {
		v, ok := full[k]
		if !ok {
			return nil, nil, fmt.Errorf("%w: required key %q is not in the context", ErrInvalidContext, k)
		}
		required[k] = v
	}
	return full, required, nil
}

func storedContext(full, required map[string]string) map[string]string {
	if len(required) == 0 {
		return full
	}
	stored := make(map[string]string, len(full))
	for k, v := range full {
		if _, ok := required[k]; !ok {
			stored[k] = v
		}
	}
	return stored
}

// sealHeader derives the message keys from dataKey, sets the commit key,
// and appends hdr serialized and its authentication tag to dst. It
// returns the header bytes and the message's AES-GCM.
func sealHeader(dst []byte, hdr *Header, dataKey []byte, required map[string]string) ([]byte, cipher.AEAD, error) {
	key, commit, err := deriveKeys(hdr.Suite, dataKey, hdr.MessageID)
	if err != nil {
		return nil, nil, err
	}
	defer clear(key)
	hdr.commitKey = commit
	body, err := serializeBodyV2(dst, hdr)
	if err != nil {
		return nil, nil, err
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, nil, err
	}
	aad, err := headerAuthAAD(body, required)
	if err != nil {
		return nil, nil, err
	}
	out := aead.Seal(body, zeroIV[:], nil, aad)
	hdr.body, hdr.authIV, hdr.authTag, hdr.HeaderLength = out[:len(body)], zeroIV[:], out[len(body):], len(out)
	return out, aead, nil
}

func concurrency(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}
