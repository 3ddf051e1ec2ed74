package envelope

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/subtle"
	"fmt"
	"io"
	"maps"
)

// errNotInspected refuses a Header that no parse produced.
var errNotInspected = fmt.Errorf("%w: the header was not returned by Inspect", ErrInvalidOptions)

// RewrapHeader re-encrypts a message's data key for another keyring
// without touching its body. old is the message's header as [Inspect]
// returned it (Inspect reads exactly the header, so a caller that reads
// the header to decide on the rewrap parses it once): RewrapHeader
// unwraps the data key once with from, authenticating the header bytes
// Inspect read, wraps the same key under to, and returns a new header
// with the same suite, message ID, commit key, stored and required
// context, and a fresh header tag. The new message is the new header
// followed by the original bytes from offset old.HeaderLength on,
// unchanged.
//
// Only unsigned message format v2 (SuiteCommitted) can be rewrapped this
// way: a signed message's footer covers the header, so use RewrapSigned.
func RewrapHeader(ctx context.Context, old *Header, from, to Keyring, opts DecryptOptions) ([]byte, error) {
	if old.body == nil {
		return nil, errNotInspected
	}
	if old.Suite != SuiteCommitted {
		return nil, fmt.Errorf("%w: RewrapHeader handles %v only; use RewrapSigned for %v", ErrUnsupportedSuite, SuiteCommitted, SuiteCommittedSigned)
	}
	u, dataKey, err := openHeader(ctx, old, from, opts)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	newHeader, _, err := rewrapKey(ctx, old, u, dataKey, to, u.full, old.EncryptionContext)
	return newHeader, err
}

// rewrapKey wraps dataKey under to with the full context and seals a new
// header that stores the stored context.
func rewrapKey(ctx context.Context, old *Header, u *unlocked, dataKey []byte, to Keyring, full, stored map[string]string) ([]byte, *Header, error) {
	m := &EncryptionMaterials{Suite: old.Suite, EncryptionContext: full, DataKey: append([]byte(nil), dataKey...), PlaintextLength: -1}
	defer clear(m.DataKey)
	if err := to.OnEncrypt(ctx, m); err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(m.DataKey, dataKey) != 1 {
		return nil, nil, fmt.Errorf("%w: target keyring replaced the data key", ErrKeyring)
	}
	hdr := &Header{Version: 2, Suite: old.Suite, MessageID: old.MessageID, EncryptionContext: stored,
		EncryptedDataKeys: m.EncryptedDataKeys, ContentType: old.ContentType, FrameLength: old.FrameLength}
	out, _, err := sealHeader(nil, hdr, dataKey, u.required)
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(hdr.commitKey, old.commitKey) != 1 {
		return nil, nil, ErrAuthentication // unreachable: same key and message ID
	}
	return out, hdr, nil
}

// RewrapSigned rewraps a SuiteCommittedSigned message to dst in one
// pass: a new header (data key wrapped under to, fresh signing key pair
// in the context), the body bytes unchanged, and a new footer signature.
// old is the message's header as [Inspect] returned it and body the
// message from offset old.HeaderLength on (what Inspect left unread).
// The old signature is verified against the body as it streams through;
// on any error the output written so far must be discarded.
func RewrapSigned(ctx context.Context, old *Header, body io.Reader, dst io.Writer, from, to Keyring, opts DecryptOptions) error {
	if old.body == nil {
		return errNotInspected
	}
	if old.Suite != SuiteCommittedSigned {
		return fmt.Errorf("%w: RewrapSigned handles %v only", ErrUnsupportedSuite, SuiteCommittedSigned)
	}
	u, dataKey, err := openHeader(ctx, old, from, opts)
	if err != nil {
		return err
	}
	defer clear(dataKey)
	return rewrapSignedBody(ctx, old, u, dataKey, bufio.NewReaderSize(body, 64<<10), dst, to)
}

// rewrapSignedBody writes the new header, streams the body through while
// verifying the old signature, and writes the new footer.
func rewrapSignedBody(ctx context.Context, old *Header, u *unlocked, dataKey []byte, br *bufio.Reader, dst io.Writer, to Keyring) error {
	oldPub, oldHash, err := newVerifier(old.Suite, old.EncryptionContext)
	if err != nil {
		return err
	}
	sig, pub, err := newSigner()
	if err != nil {
		return err
	}
	full, stored := maps.Clone(u.full), maps.Clone(old.EncryptionContext)
	full[PublicKeyContextKey], stored[PublicKeyContextKey] = pub, pub
	newHeader, _, err := rewrapKey(ctx, old, u, dataKey, to, full, stored)
	if err != nil {
		return err
	}
	oldHash.Write(old.body)
	oldHash.Write(old.authTag)
	r := &Reader{hdr: old, src: br, codec: u.codec, h: oldHash}
	if err := copyBody(r, dst, newHeader, sig); err != nil {
		return err
	}
	oldSig, err := readFooter(br)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(oldPub, oldHash.Sum(nil), oldSig) {
		return ErrAuthentication
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err == nil {
			return ErrTrailingData
		}
		return err
	}
	footer, err := sig.footer()
	if err != nil {
		return err
	}
	_, err = dst.Write(footer)
	return err
}

// copyBody writes the new header, then every frame's wire bytes
// unchanged, hashing them for both the old and the new signature. Frames
// stream through: rewrap holds no frame whole, whatever its length.
func copyBody(r *Reader, dst io.Writer, newHeader []byte, sig *signer) error {
	sig.h.Write(newHeader)
	if _, err := dst.Write(newHeader); err != nil {
		return err
	}
	out := io.MultiWriter(dst, sig.h, r.h)
	for !r.readDone {
		t, err := r.copyFrame(out) // checks sequence numbers
		if err != nil {
			return err
		}
		r.free = append(r.free, t)
	}
	return nil
}
