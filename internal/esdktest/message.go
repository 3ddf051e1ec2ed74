package esdktest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"sort"

	"github.com/keystack/keystack/envelope"
)

// Message is a message format v2 message (suite 0x0478) under
// construction, built from the specification (aws-encryption-sdk-
// specification, data-format/message-header.md, message-body.md,
// message-body-aad.md, framework/algorithm-suites.md) with the standard
// library alone, not with envelope's writer: so it can make what keystack
// never writes (non-framed v2 bodies, frames with arbitrary IVs) and check
// the reader against the format rather than against itself.
type Message struct {
	Header []byte // the header, authentication tag included
	ID     []byte // the 32-byte message ID
	aead   cipher.AEAD
}

// HeaderSpec says what header NewMessage writes.
type HeaderSpec struct {
	Context     map[string]string // stored encryption context
	NonFramed   bool              // content type 1 (frame length 0)
	FrameLength uint32            // content type 2; any value, even one a reader must refuse
}

// NewMessage asks kr for a data key and its encrypted copies, derives the
// message keys with HKDF-SHA512 and seals a header as spec says.
func NewMessage(ctx context.Context, kr envelope.Keyring, spec HeaderSpec) (*Message, error) {
	ec := map[string]string{}
	for k, v := range spec.Context {
		ec[k] = v
	}
	mat := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: ec, PlaintextLength: -1}
	if err := kr.OnEncrypt(ctx, mat); err != nil {
		return nil, err
	}
	m := &Message{ID: make([]byte, 32)}
	rand.Read(m.ID)
	suiteID := []byte{0x04, 0x78}
	prk, err := hkdf.Extract(sha512.New, mat.DataKey, m.ID)
	if err != nil {
		return nil, err
	}
	key, err := hkdf.Expand(sha512.New, prk, string(suiteID)+"DERIVEKEY", 32)
	if err != nil {
		return nil, err
	}
	commit, err := hkdf.Expand(sha512.New, prk, "COMMITKEY", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if m.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	body := headerBody(m.ID, suiteID, ec, mat.EncryptedDataKeys, spec)
	body = append(body, commit...)
	m.Header = m.aead.Seal(body, make([]byte, 12), nil, body) // v2 header IV: zeros
	return m, nil
}

// headerBody serializes a v2 header up to the commit key.
func headerBody(id, suiteID []byte, ec map[string]string, edks []envelope.EncryptedDataKey, spec HeaderSpec) []byte {
	b := append([]byte{0x02}, suiteID...)
	b = append(b, id...)
	aad := serializeContext(ec)
	b = binary.BigEndian.AppendUint16(b, uint16(len(aad)))
	b = append(b, aad...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(edks)))
	for _, e := range edks {
		for _, f := range [][]byte{[]byte(e.ProviderID), e.ProviderInfo, e.Ciphertext} {
			b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
			b = append(b, f...)
		}
	}
	if spec.NonFramed {
		return binary.BigEndian.AppendUint32(append(b, 1), 0)
	}
	return binary.BigEndian.AppendUint32(append(b, 2), spec.FrameLength)
}

// serializeContext is framework/structures.md's serialization: pairs
// sorted by key bytes; an empty context is no bytes at all.
func serializeContext(ec map[string]string) []byte {
	if len(ec) == 0 {
		return nil
	}
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	sort.Strings(keys) // Go compares strings bytewise
	b := binary.BigEndian.AppendUint16(nil, uint16(len(keys)))
	for _, k := range keys {
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(ec[k])))
		b = append(b, ec[k]...)
	}
	return b
}

// Body AAD content strings (data-format/message-body-aad.md).
const (
	aadFrame  = "AWSKMSEncryptionClient Frame"
	aadFinal  = "AWSKMSEncryptionClient Final Frame"
	aadSingle = "AWSKMSEncryptionClient Single Block"
)

func (m *Message) bodyAAD(content string, seq uint32, n int) []byte {
	b := append(append([]byte(nil), m.ID...), content...)
	b = binary.BigEndian.AppendUint32(b, seq)
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// Frame returns one frame's wire bytes: seq ‖ IV ‖ ct ‖ tag, or for the
// final frame 0xFFFFFFFF ‖ seq ‖ IV ‖ length ‖ ct ‖ tag, sealed with iv,
// whatever it is.
func (m *Message) Frame(seq uint32, final bool, iv, pt []byte) []byte {
	var b []byte
	content := aadFrame
	if final {
		b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
		content = aadFinal
	}
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, iv...)
	if final {
		b = binary.BigEndian.AppendUint32(b, uint32(len(pt)))
	}
	return m.aead.Seal(b, iv, pt, m.bodyAAD(content, seq, len(pt)))
}

// Framed returns a whole framed body of pt in frames of frameLen bytes
// (a short or empty final frame), frame n sealed with iv(n).
func (m *Message) Framed(pt []byte, frameLen int, iv func(seq uint32) []byte) []byte {
	var b []byte
	seq := uint32(1)
	for ; len(pt) >= frameLen; seq++ {
		b = append(b, m.Frame(seq, false, iv(seq), pt[:frameLen])...)
		pt = pt[frameLen:]
	}
	return append(b, m.Frame(seq, true, iv(seq), pt)...)
}

// NonFramed returns a non-framed body: IV ‖ length u64 ‖ ct ‖ tag.
func (m *Message) NonFramed(iv, pt []byte) []byte {
	b := append([]byte(nil), iv...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(pt)))
	return m.aead.Seal(b, iv, pt, m.bodyAAD(aadSingle, 1, len(pt)))
}

// RandomIV is a fresh random 12-byte IV.
func RandomIV(uint32) []byte {
	iv := make([]byte, 12)
	rand.Read(iv)
	return iv
}

// SequenceIV is the IV keystack writes: 8 zero bytes ‖ seq.
func SequenceIV(seq uint32) []byte {
	return binary.BigEndian.AppendUint32(make([]byte, 8), seq)
}
