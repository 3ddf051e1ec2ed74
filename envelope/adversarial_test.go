package envelope_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/keystack/keystack/envelope"
)

const advFrame = 16

// smallMessage is a 3-frame message (two regular frames and a partial final one).
func smallMessage(t *testing.T, suite envelope.Suite) (envelope.Keyring, []byte, []byte, *envelope.Header) {
	t.Helper()
	kr := aesKeyring(t, "k1", 1)
	pt := pattern(2*advFrame + 5)
	msg, err := envelope.EncryptBytes(bg, pt, kr, envelope.EncryptOptions{
		Suite: suite, FrameLength: advFrame, Context: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return kr, pt, msg, hdr
}

var bothSuites = []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteCommittedSigned}

func TestEveryBitFlipRejected(t *testing.T) {
	for _, suite := range bothSuites {
		t.Run(suite.String(), func(t *testing.T) {
			t.Parallel()
			kr, _, msg, _ := smallMessage(t, suite)
			opts := envelope.DecryptOptions{Context: map[string]string{"a": "b"}}
			if _, _, err := envelope.DecryptBytes(bg, msg, kr, opts); err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(msg)
			for i := range msg {
				for bit := 0; bit < 8; bit++ {
					bad[i] ^= 1 << bit
					if _, _, err := envelope.DecryptBytes(bg, bad, kr, opts); err == nil {
						t.Fatalf("flip of byte %d bit %d accepted", i, bit)
					}
					bad[i] ^= 1 << bit
				}
			}
		})
	}
}

func TestEveryTruncationRejected(t *testing.T) {
	for _, suite := range bothSuites {
		kr, _, msg, _ := smallMessage(t, suite)
		opts := envelope.DecryptOptions{Context: map[string]string{"a": "b"}}
		for i := 0; i < len(msg); i++ {
			_, _, err := envelope.DecryptBytes(bg, msg[:i], kr, opts)
			if !errors.Is(err, envelope.ErrTruncated) {
				t.Fatalf("%v: cut at %d of %d: %v, want ErrTruncated", suite, i, len(msg), err)
			}
		}
	}
}

func TestTrailingDataRejected(t *testing.T) {
	for _, suite := range bothSuites {
		kr, _, msg, _ := smallMessage(t, suite)
		opts := envelope.DecryptOptions{Context: map[string]string{"a": "b"}}
		for _, extra := range [][]byte{{0}, msg} {
			_, _, err := envelope.DecryptBytes(bg, append(bytes.Clone(msg), extra...), kr, opts)
			if !errors.Is(err, envelope.ErrTrailingData) {
				t.Fatalf("%v: %d trailing bytes: %v, want ErrTrailingData", suite, len(extra), err)
			}
		}
	}
}

// frames splits msg into header, regular frames, and the rest (final frame and footer).
func frames(msg []byte, hdr *envelope.Header, n int) (head []byte, regular [][]byte, rest []byte) {
	off := hdr.HeaderLength
	size := int(hdr.FrameLength) + 32
	for i := 0; i < n; i++ {
		regular = append(regular, msg[off+i*size:off+(i+1)*size])
	}
	return msg[:off], regular, msg[off+n*size:]
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestFrameReorderingRejected(t *testing.T) {
	for _, suite := range bothSuites {
		kr, _, msg, hdr := smallMessage(t, suite)
		opts := envelope.DecryptOptions{Context: map[string]string{"a": "b"}}
		head, f, rest := frames(msg, hdr, 2)
		final := rest
		if suite.Signed() {
			final = rest[:len(rest)-105]
		}
		cases := map[string][]byte{
			"swapped":          join(head, f[1], f[0], rest),
			"duplicated":       join(head, f[0], f[0], f[1], rest),
			"dropped":          join(head, f[1], rest),
			"no final frame":   join(head, f[0], f[1]),
			"final frame only": join(head, final),
		}
		for name, bad := range cases {
			if _, _, err := envelope.DecryptBytes(bg, bad, kr, opts); err == nil {
				t.Errorf("%v: %s accepted", suite, name)
			}
		}
		if _, _, err := envelope.DecryptBytes(bg, cases["no final frame"], kr, opts); !errors.Is(err, envelope.ErrTruncated) {
			t.Errorf("%v: missing final frame: %v, want ErrTruncated", suite, err)
		}
		if _, _, err := envelope.DecryptBytes(bg, cases["swapped"], kr, opts); !errors.Is(err, envelope.ErrAuthentication) {
			t.Errorf("%v: swapped frames: %v, want ErrAuthentication", suite, err)
		}
	}
}

// readAllSeen reads r to the end and returns everything it released.
func readAllSeen(r io.Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

// TestNoUnauthenticatedRelease corrupts one frame's tag of a long message
// and checks the streaming reader released exactly the frames before it.
func TestNoUnauthenticatedRelease(t *testing.T) {
	kr := aesKeyring(t, "k1", 1)
	const f, n = 64, 40
	pt := pattern(f*n + 9)
	for _, conc := range []int{1, 4} {
		msg, err := envelope.EncryptBytes(bg, pt, kr, envelope.EncryptOptions{FrameLength: f})
		if err != nil {
			t.Fatal(err)
		}
		hdr, _ := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
		const bad = 20 // frame number 21 is corrupted
		msg[hdr.HeaderLength+(bad+1)*(f+32)-1] ^= 1
		r, err := envelope.Decrypt(bg, bytes.NewReader(msg), kr, envelope.DecryptOptions{Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
		seen, err := readAllSeen(r)
		if !errors.Is(err, envelope.ErrAuthentication) {
			t.Fatalf("conc %d: %v, want ErrAuthentication", conc, err)
		}
		if !bytes.Equal(seen, pt[:bad*f]) {
			t.Fatalf("conc %d: released %d bytes, want exactly the %d before the bad frame", conc, len(seen), bad*f)
		}
		if _, err2 := r.Read(make([]byte, 10)); err2 != err {
			t.Fatalf("error not sticky: %v then %v", err, err2)
		}
		r.Close()
	}
}

// TestSignedFinalFrameHeld checks that a bad signature withholds the final
// frame's plaintext.
func TestSignedFinalFrameHeld(t *testing.T) {
	kr, pt, msg, _ := smallMessage(t, envelope.SuiteCommittedSigned)
	msg[len(msg)-1] ^= 1
	r, err := envelope.Decrypt(bg, bytes.NewReader(msg), kr, envelope.DecryptOptions{Context: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	seen, err := readAllSeen(r)
	if !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("%v, want ErrAuthentication", err)
	}
	if !bytes.Equal(seen, pt[:2*advFrame]) {
		t.Fatalf("released %d bytes, want only the %d of the regular frames", len(seen), 2*advFrame)
	}
}
