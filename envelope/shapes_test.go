package envelope_test

// Message shapes the official SDKs write and keystack does not: v2
// non-framed bodies and frames whose IVs are not sequence numbers. Each
// is built from the specification by esdktest, not by envelope's writer.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/esdktest"
)

func newSpecMessage(t testing.TB, kr envelope.Keyring, spec esdktest.HeaderSpec) *esdktest.Message {
	t.Helper()
	m, err := esdktest.NewMessage(bg, kr, spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// decryptBoth decrypts msg in one shot and streamed a few bytes at a time
// through a non-bytes.Reader, and checks both give want.
func decryptBoth(t *testing.T, msg []byte, kr envelope.Keyring, opts envelope.DecryptOptions, want []byte) *envelope.Header {
	t.Helper()
	got, hdr, err := envelope.DecryptBytes(bg, msg, kr, opts)
	if err != nil {
		t.Fatalf("DecryptBytes: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("plaintext differs: %d bytes, want %d", len(got), len(want))
	}
	r, err := envelope.Decrypt(bg, iotest.HalfReader(bytes.NewReader(msg)), kr, opts)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	defer r.Close()
	streamed, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(streamed, want) {
		t.Fatalf("streamed: %d bytes, %v", len(streamed), err)
	}
	return hdr
}

// TestV2NonFramed reads v2 non-framed messages (content type 1) without
// AllowLegacy: v2 suites commit to their key, whatever the body shape.
func TestV2NonFramed(t *testing.T) {
	kr := aesKeyring(t, "nf", 1)
	ec := map[string]string{"purpose": "non-framed", "\U0001F511": "x"}
	for _, n := range []int{0, 1, 1000, 70000} {
		m := newSpecMessage(t, kr, esdktest.HeaderSpec{Context: ec, NonFramed: true})
		pt := pattern(n)
		msg := append(bytes.Clone(m.Header), m.NonFramed(esdktest.RandomIV(0), pt)...)
		hdr := decryptBoth(t, msg, kr, envelope.DecryptOptions{Context: ec}, pt)
		if hdr.Version != 2 || hdr.ContentType != 1 || hdr.FrameLength != 0 {
			t.Fatalf("header: version %d, content type %d, frame length %d", hdr.Version, hdr.ContentType, hdr.FrameLength)
		}
	}
}

// TestV2NonFramedTampered: every change to a v2 non-framed body, or its
// header, is refused with its own error class.
func TestV2NonFramedTampered(t *testing.T) {
	kr := aesKeyring(t, "nf", 1)
	m := newSpecMessage(t, kr, esdktest.HeaderSpec{NonFramed: true})
	pt := pattern(3000)
	msg := append(bytes.Clone(m.Header), m.NonFramed(esdktest.RandomIV(0), pt)...)
	body := len(m.Header)
	flip := func(off int) []byte { b := bytes.Clone(msg); b[off] ^= 0x01; return b }
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"IV", flip(body), envelope.ErrAuthentication},
		{"ciphertext", flip(body + 20 + 1500), envelope.ErrAuthentication},
		{"tag", flip(len(msg) - 1), envelope.ErrAuthentication},
		{"content type", flip(len(m.Header) - 16 - 32 - 4 - 1), envelope.ErrMalformed},
		{"header tag", flip(len(m.Header) - 1), envelope.ErrAuthentication},
		{"length shorter", flip(body + 18), envelope.ErrAuthentication}, // 3000-256: the tag is read from the ciphertext
		{"length longer", flip(body + 19), envelope.ErrTruncated},       // 3001
		{"cut tag", msg[:len(msg)-1], envelope.ErrTruncated},
		{"cut body", msg[:body+10], envelope.ErrTruncated},
		{"trailing byte", append(bytes.Clone(msg), 0), envelope.ErrTrailingData},
	}
	for _, tc := range cases {
		_, _, err := envelope.DecryptBytes(bg, tc.msg, kr, envelope.DecryptOptions{})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, _, err := envelope.DecryptBytes(bg, msg, aesKeyring(t, "nf", 2), envelope.DecryptOptions{}); err == nil {
		t.Error("wrong key decrypted")
	}
}

// TestNonFramedLimit: a non-framed body above 16 MiB (the default limit) is
// refused as soon as its length is read, and read when MaxFrameLength
// raises the limit.
func TestNonFramedLimit(t *testing.T) {
	kr := aesKeyring(t, "nf", 1)
	m := newSpecMessage(t, kr, esdktest.HeaderSpec{NonFramed: true})
	pt := pattern(16<<20 + 1)
	msg := append(bytes.Clone(m.Header), m.NonFramed(esdktest.RandomIV(0), pt)...)
	_, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{})
	if !errors.Is(err, envelope.ErrFrameTooLarge) || !strings.Contains(err.Error(), "MaxFrameLength") {
		t.Fatalf("over the limit: %v, want ErrFrameTooLarge naming MaxFrameLength", err)
	}
	// Only the header and the body's prefix are needed to refuse it.
	short := msg[:len(m.Header)+20]
	if _, _, err := envelope.DecryptBytes(bg, short, kr, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrFrameTooLarge) {
		t.Fatalf("prefix only: %v", err)
	}
	got, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{MaxFrameLength: 32 << 20})
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("raised limit: %v", err)
	}
}

// TestFrameIVsAnyValue: frames sealed under IVs that are not the sequence
// number decrypt, as the reference implementation reads them, sequentially
// and through the parallel pipeline.
func TestFrameIVsAnyValue(t *testing.T) {
	kr := aesKeyring(t, "iv", 1)
	fixed := func(uint32) []byte { return bytes.Repeat([]byte{0xA5}, 12) } // one IV for all frames: still authentic
	for name, iv := range map[string]func(uint32) []byte{"random": esdktest.RandomIV, "same": fixed, "sequence": esdktest.SequenceIV} {
		for _, n := range []int{0, 99, 100, 1000, 100*600 + 7} {
			m := newSpecMessage(t, kr, esdktest.HeaderSpec{FrameLength: 100})
			pt := pattern(n)
			msg := append(bytes.Clone(m.Header), m.Framed(pt, 100, iv)...)
			decryptBoth(t, msg, kr, envelope.DecryptOptions{}, pt)
			r, err := envelope.Decrypt(bg, bytes.NewReader(msg), kr, envelope.DecryptOptions{Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s IVs, %d bytes, 4 workers: %v", name, n, err)
			}
		}
	}
}

// TestFrameSequenceStillChecked: with any IV accepted, a frame's sequence
// number is still checked, on the wire and through the body AAD.
func TestFrameSequenceStillChecked(t *testing.T) {
	kr := aesKeyring(t, "iv", 1)
	m := newSpecMessage(t, kr, esdktest.HeaderSpec{FrameLength: 16})
	pt := pattern(16*3 + 5)
	frame := func(seq uint32, final bool, i int) []byte {
		chunk := pt[16*i : min(16*(i+1), len(pt))]
		return m.Frame(seq, final, esdktest.RandomIV(seq), chunk)
	}
	join := func(fs ...[]byte) []byte { return append(bytes.Clone(m.Header), bytes.Join(fs, nil)...) }
	good := join(frame(1, false, 0), frame(2, false, 1), frame(3, false, 2), frame(4, true, 3))
	if got, _, err := envelope.DecryptBytes(bg, good, kr, envelope.DecryptOptions{}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("in-order frames: %v", err)
	}
	// A frame sealed for sequence number 3 but stored as 2.
	relabeled := frame(3, false, 1)
	relabeled[3] = 2
	cases := map[string][]byte{
		"skipped sequence number": join(frame(1, false, 0), frame(3, false, 1), frame(4, false, 2), frame(5, true, 3)),
		"swapped frames":          join(frame(2, false, 1), frame(1, false, 0), frame(3, false, 2), frame(4, true, 3)),
		"repeated frame":          join(frame(1, false, 0), frame(1, false, 0), frame(3, false, 2), frame(4, true, 3)),
		"relabeled frame":         join(frame(1, false, 0), relabeled, frame(3, false, 2), frame(4, true, 3)),
		"starts at 2":             join(frame(2, false, 0), frame(3, false, 1), frame(4, false, 2), frame(5, true, 3)),
	}
	for name, msg := range cases {
		if _, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrAuthentication) {
			t.Errorf("%s: %v, want ErrAuthentication", name, err)
		}
	}
}

// countingKeyring records whether a decrypt reached the keyring.
type countingKeyring struct {
	envelope.Keyring
	decrypts int
}

func (k *countingKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	k.decrypts++
	return k.Keyring.OnDecrypt(ctx, m, edks)
}

// TestMaxFrameLength: a header declaring frames above MaxFrameLength is
// refused before any keyring runs, naming the option; raising the option
// reads it.
func TestMaxFrameLength(t *testing.T) {
	kr := &countingKeyring{Keyring: aesKeyring(t, "max", 1)}
	for _, fl := range []uint32{1<<32 - 1, envelope.DefaultMaxFrameLength + 1} {
		m := newSpecMessage(t, kr, esdktest.HeaderSpec{FrameLength: fl})
		msg := append(bytes.Clone(m.Header), make([]byte, 1<<16)...) // zeros where frames should be
		_, err := envelope.Decrypt(bg, bytes.NewReader(msg), kr, envelope.DecryptOptions{})
		if !errors.Is(err, envelope.ErrFrameTooLarge) || !strings.Contains(err.Error(), "MaxFrameLength") {
			t.Fatalf("frame length %d: %v, want ErrFrameTooLarge naming MaxFrameLength", fl, err)
		}
		if kr.decrypts != 0 {
			t.Fatalf("frame length %d: the keyring ran before the limit was checked", fl)
		}
	}
	m := newSpecMessage(t, kr, esdktest.HeaderSpec{FrameLength: envelope.DefaultMaxFrameLength})
	pt := pattern(envelope.DefaultMaxFrameLength + 10)
	msg := append(bytes.Clone(m.Header), m.Framed(pt, envelope.DefaultMaxFrameLength, esdktest.SequenceIV)...)
	if got, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("frames of exactly the default limit: %v", err)
	}
	if _, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{MaxFrameLength: 4096}); !errors.Is(err, envelope.ErrFrameTooLarge) {
		t.Fatalf("lowered limit: %v", err)
	}
}

// TestEncryptMaxFrameLength: Encrypt refuses frames readers refuse by
// default unless MaxFrameLength is raised, and then readers need it too.
func TestEncryptMaxFrameLength(t *testing.T) {
	kr := aesKeyring(t, "max", 1)
	big := envelope.DefaultMaxFrameLength + 1
	if _, err := envelope.EncryptBytes(bg, []byte("x"), kr, envelope.EncryptOptions{FrameLength: big}); !errors.Is(err, envelope.ErrInvalidOptions) || !strings.Contains(err.Error(), "MaxFrameLength") {
		t.Fatalf("frame length above the default limit: %v", err)
	}
	pt := pattern(big + 3)
	msg, err := envelope.EncryptBytes(bg, pt, kr, envelope.EncryptOptions{FrameLength: big, MaxFrameLength: big})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrFrameTooLarge) {
		t.Fatalf("default reader: %v", err)
	}
	if got, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{MaxFrameLength: big}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("raised reader: %v", err)
	}
}

// TestRewrapV2NonFramed: rewrap keeps a non-framed message non-framed,
// unsigned in place of its header.
func TestRewrapV2NonFramed(t *testing.T) {
	from, to := aesKeyring(t, "old", 1), aesKeyring(t, "new", 2)
	m := newSpecMessage(t, from, esdktest.HeaderSpec{NonFramed: true, Context: map[string]string{"a": "b"}})
	pt := pattern(5000)
	body := m.NonFramed(esdktest.RandomIV(0), pt)
	msg := append(bytes.Clone(m.Header), body...)
	newHeader, old, err := rewrapHeader(bytes.NewReader(msg), from, to, envelope.DecryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rewrapped := append(newHeader, msg[old.HeaderLength:]...)
	hdr := decryptBoth(t, rewrapped, to, envelope.DecryptOptions{}, pt)
	if hdr.ContentType != 1 || hdr.FrameLength != 0 {
		t.Fatalf("rewrapped header: content type %d, frame length %d", hdr.ContentType, hdr.FrameLength)
	}
}
