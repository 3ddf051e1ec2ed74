package envelope_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/keystack/keystack/envelope"
)

// The writer has three ways in (Write copying, Write sealing whole frames
// from the caller's buffer, ReadFrom reading into frame buffers) and the
// reader two ways out (Read, WriteTo). Every combination must produce the
// same framing and the same plaintext, at frame boundaries above all.
func TestCopyPathsAgree(t *testing.T) {
	kr := aesKeyring(t, "paths", 1)
	const fl = 64
	for _, n := range []int{0, 1, fl - 1, fl, fl + 1, 2 * fl, 3*fl + 5, 40 * fl} {
		pt := pattern(n)
		for _, c := range []struct {
			conc  int
			suite envelope.Suite
		}{{1, envelope.SuiteCommitted}, {3, envelope.SuiteCommitted}, {3, envelope.SuiteCommittedSigned}} {
			conc := c.conc
			opts := envelope.EncryptOptions{FrameLength: fl, Concurrency: conc, Suite: c.suite}
			oneShot, err := envelope.EncryptBytes(bg, pt, kr, opts)
			if err != nil {
				t.Fatal(err)
			}
			ways := map[string][]byte{
				"bytes":       oneShot,
				"write-odd":   encryptStream(t, kr, pt, opts),
				"write-whole": encryptWith(t, kr, opts, func(w io.Writer) error { _, err := w.Write(pt); return err }),
				"readfrom-1": encryptWith(t, kr, opts, func(w io.Writer) error {
					_, err := io.Copy(w, iotest.OneByteReader(bytes.NewReader(pt)))
					return err
				}),
				"readfrom-dataerr": encryptWith(t, kr, opts, func(w io.Writer) error {
					_, err := io.Copy(w, iotest.DataErrReader(bytes.NewReader(pt)))
					return err
				}),
				"readfrom-half": encryptWith(t, kr, opts, func(w io.Writer) error {
					_, err := w.(io.ReaderFrom).ReadFrom(iotest.HalfReader(bytes.NewReader(pt)))
					return err
				}),
			}
			want := len(ways["write-odd"])
			for way, msg := range ways {
				if len(msg) != want {
					t.Errorf("n=%d conc=%d %s: %d bytes, write-odd gave %d: framing differs", n, conc, way, len(msg), want)
				}
				for _, out := range []string{"read", "writeto"} {
					if got := decryptWith(t, kr, msg, conc, out); !bytes.Equal(got, pt) {
						t.Errorf("n=%d conc=%d %s, %s: plaintext differs", n, conc, way, out)
					}
				}
			}
		}
	}
}

func encryptWith(t *testing.T, kr envelope.Keyring, opts envelope.EncryptOptions, feed func(io.Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := envelope.Encrypt(bg, &buf, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decryptWith(t *testing.T, kr envelope.Keyring, msg []byte, conc int, out string) []byte {
	t.Helper()
	r, err := envelope.Decrypt(bg, bytes.NewReader(msg), kr, envelope.DecryptOptions{Concurrency: conc})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got bytes.Buffer
	if out == "writeto" {
		_, err = r.WriteTo(&got)
	} else {
		_, err = io.Copy(&got, iotest.OneByteReader(r))
	}
	if err != nil {
		t.Fatal(err)
	}
	return got.Bytes()
}

// Write must not keep the caller's buffer: once it returns, changing the
// buffer cannot change the message.
func TestWriteDoesNotRetainBuffer(t *testing.T) {
	kr := aesKeyring(t, "retain", 1)
	// Large enough that Write seals frames straight from buf (all but
	// its last 256 KiB) and copies the rest; twice, so that the second
	// Write starts with copied frames of the first still in flight.
	pt := pattern(2 * 700 << 10)
	buf := bytes.Clone(pt)
	msg := encryptWith(t, kr, envelope.EncryptOptions{FrameLength: 4096, Concurrency: 4}, func(w io.Writer) error {
		for half := range 2 {
			copy(buf, pt[half*700<<10:])
			if _, err := w.Write(buf[:700<<10]); err != nil {
				return err
			}
			clear(buf)
		}
		return nil
	})
	if got := decryptWith(t, kr, msg, 2, "read"); !bytes.Equal(got, pt) {
		t.Fatal("message changed after Write returned")
	}
}

// WriteTo stops at a tampered frame with ErrAuthentication, after writing
// only the frames before it.
func TestWriteToStopsAtTamperedFrame(t *testing.T) {
	kr := aesKeyring(t, "tamper", 1)
	const fl = 64
	pt := pattern(10 * fl)
	msg := encryptWith(t, kr, envelope.EncryptOptions{FrameLength: fl}, func(w io.Writer) error { _, err := w.Write(pt); return err })
	msg[len(msg)-3*(fl+4+12+16)] ^= 1 // inside a late regular frame
	r, err := envelope.Decrypt(bg, bytes.NewReader(msg), kr, envelope.DecryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got bytes.Buffer
	n, err := r.WriteTo(&got)
	if !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("WriteTo: %v, want ErrAuthentication", err)
	}
	if n%fl != 0 || n >= int64(len(pt)) || !bytes.Equal(got.Bytes(), pt[:n]) {
		t.Fatalf("released %d bytes before the tampered frame, not whole verified frames", n)
	}
}

// ReadFrom enforces a declared length like Write does, whether the
// declared length is above the frame length or below it (when the writer
// sizes its frame buffers to the declared length).
func TestReadFromDeclaredLength(t *testing.T) {
	kr := aesKeyring(t, "declared", 1)
	for _, fl := range []int{64, 4096} {
		opts := envelope.EncryptOptions{FrameLength: fl, PlaintextLength: 100}
		msg := encryptWith(t, kr, opts, func(w io.Writer) error {
			_, err := io.Copy(w, iotest.HalfReader(bytes.NewReader(pattern(100))))
			return err
		})
		if got := decryptWith(t, kr, msg, 1, "writeto"); !bytes.Equal(got, pattern(100)) {
			t.Fatalf("fl=%d: round trip of the declared 100 bytes failed", fl)
		}
		w, err := envelope.Encrypt(bg, io.Discard, kr, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, bytes.NewReader(pattern(101))); !errors.Is(err, envelope.ErrInvalidOptions) {
			t.Fatalf("fl=%d: ReadFrom past the declared length: %v, want ErrInvalidOptions", fl, err)
		}
		if err := w.Close(); !errors.Is(err, envelope.ErrInvalidOptions) {
			t.Fatalf("fl=%d: Close after the overrun: %v", fl, err)
		}
	}
}

// A message of several worker batches (a batch is 256 KiB of frames)
// decrypts through both ways out, and a tampered frame deep in the second
// batch stops the output exactly at the frames before it.
func TestManyBatches(t *testing.T) {
	kr := aesKeyring(t, "batches", 1)
	const fl = 64
	const frames = 3*(256<<10)/fl + 7
	pt := pattern(frames * fl)
	for _, conc := range []int{1, 2, 5} {
		opts := envelope.EncryptOptions{FrameLength: fl, Concurrency: conc}
		signed := opts
		signed.Suite = envelope.SuiteCommittedSigned
		sm := encryptWith(t, kr, signed, func(w io.Writer) error { _, err := w.Write(pt); return err })
		if got := decryptWith(t, kr, sm, conc, "writeto"); !bytes.Equal(got, pt) {
			t.Fatalf("conc=%d: signed message of many batches: plaintext differs", conc)
		}
		msg := encryptWith(t, kr, opts, func(w io.Writer) error {
			_, err := io.Copy(w, iotest.HalfReader(bytes.NewReader(pt)))
			return err
		})
		whole := encryptWith(t, kr, opts, func(w io.Writer) error { _, err := w.Write(pt); return err })
		if len(whole) != len(msg) {
			t.Fatalf("conc=%d: one Write gave %d bytes, io.Copy %d", conc, len(whole), len(msg))
		}
		for _, out := range []string{"read", "writeto"} {
			if got := decryptWith(t, kr, msg, conc, out); !bytes.Equal(got, pt) {
				t.Fatalf("conc=%d %s: plaintext differs", conc, out)
			}
			if got := decryptWith(t, kr, whole, conc, out); !bytes.Equal(got, pt) {
				t.Fatalf("conc=%d %s: plaintext of one Write differs", conc, out)
			}
		}
		// Frame k's tag: the header, then k-1 regular frames of 4+12+64+16.
		const k = (256<<10)/fl + 100
		hdrLen := len(msg) - (frames-1)*(fl+32) - (fl + 40)
		bad := bytes.Clone(msg)
		bad[hdrLen+k*(fl+32)-1] ^= 0x80
		r, err := envelope.Decrypt(bg, bytes.NewReader(bad), kr, envelope.DecryptOptions{Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		n, err := r.WriteTo(&got)
		r.Close()
		if !errors.Is(err, envelope.ErrAuthentication) || n != (k-1)*fl || !bytes.Equal(got.Bytes(), pt[:n]) {
			t.Fatalf("conc=%d: tampered frame %d: released %d bytes (want %d), err %v", conc, k, n, (k-1)*fl, err)
		}
	}
}

// writeLog records each Write separately.
type writeLog struct{ writes [][]byte }

func (l *writeLog) Write(p []byte) (int, error) {
	l.writes = append(l.writes, bytes.Clone(p))
	return len(p), nil
}

// Encrypt's documented guarantee: the header reaches dst whole, in its own
// first Write (the CLI relies on it to report the header it wrote).
func TestHeaderIsFirstWrite(t *testing.T) {
	kr := aesKeyring(t, "first", 1)
	for _, n := range []int{0, 100, 70000} {
		var l writeLog
		w, err := envelope.Encrypt(bg, &l, kr, envelope.EncryptOptions{Context: map[string]string{"a": "b"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(pattern(n)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		hdr, err := envelope.Inspect(bytes.NewReader(l.writes[0]), envelope.InspectOptions{})
		if err != nil || hdr.HeaderLength != len(l.writes[0]) {
			t.Fatalf("n=%d: first write of %d bytes is not exactly the header: %v", n, len(l.writes[0]), err)
		}
	}
}
