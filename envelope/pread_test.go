package envelope_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/keystack/keystack/envelope"
)

// atFile is an *os.File seen only as what parallel reads use (no WriteTo,
// so io.Copy calls the Writer's ReadFrom).
type atFile struct{ f *os.File }

func (a atFile) Read(p []byte) (int, error)                { return a.f.Read(p) }
func (a atFile) ReadAt(p []byte, off int64) (int, error)   { return a.f.ReadAt(p, off) }
func (a atFile) Seek(off int64, whence int) (int64, error) { return a.f.Seek(off, whence) }

// preadSizes cross the parallel-read threshold with frames of 4 KiB and the
// default 64 KiB: exact multiples, one byte over and under.
var preadSizes = []int{1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 4096, 5 << 20}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// encryptAt encrypts the file at p from offset skip through ReadFrom with
// the file's remaining length declared.
func encryptAt(t *testing.T, kr envelope.Keyring, p string, skip int64, declared int64, frame int) ([]byte, error) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(skip, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := envelope.Encrypt(bg, &out, kr, envelope.EncryptOptions{FrameLength: frame, PlaintextLength: declared})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(w, atFile{f})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if pos, _ := f.Seek(0, io.SeekCurrent); pos != skip+declared {
			t.Fatalf("position after ReadFrom %d, want %d", pos, skip+declared)
		}
	}
	return out.Bytes(), err
}

// TestParallelReadEncrypt: a file read by the sealing goroutines makes the
// message the sequential path makes (same length, same frames), from the
// file's current position; a file shorter or longer than declared fails.
func TestParallelReadEncrypt(t *testing.T) {
	kr := aesKeyring(t, "pread", 1)
	for _, frame := range []int{4096, envelope.DefaultFrameLength} {
		for _, n := range preadSizes {
			pt := pattern(n + 7)
			p := writeFile(t, pt)
			msg, err := encryptAt(t, kr, p, 7, int64(n), frame)
			if err != nil {
				t.Fatalf("frame %d, %d bytes: %v", frame, n, err)
			}
			var seq bytes.Buffer
			w, _ := envelope.Encrypt(bg, &seq, kr, envelope.EncryptOptions{FrameLength: frame, PlaintextLength: int64(n)})
			if _, err := io.Copy(w, iotest.HalfReader(bytes.NewReader(pt[7:]))); err != nil || w.Close() != nil {
				t.Fatal(err)
			}
			if len(msg) != seq.Len() {
				t.Fatalf("frame %d, %d bytes: %d bytes of message, the sequential path %d", frame, n, len(msg), seq.Len())
			}
			got, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{})
			if err != nil || !bytes.Equal(got, pt[7:]) {
				t.Fatalf("frame %d, %d bytes: round trip: %v", frame, n, err)
			}
		}
	}
	p := writeFile(t, pattern(2<<20))
	for _, declared := range []int64{2<<20 + 1, 3 << 20, 2<<20 - 1, 1 << 20} {
		_, err := encryptAt(t, kr, p, 0, declared, 4096)
		if !errors.Is(err, envelope.ErrInvalidOptions) {
			t.Fatalf("file of %d bytes declared %d: %v, want ErrInvalidOptions", 2<<20, declared, err)
		}
	}
}

// decryptAt decrypts msg from a file that holds 5 other bytes before it,
// read from offset 5, and checks the file's position after a success.
func decryptAt(t *testing.T, kr envelope.Keyring, msg []byte, conc int) ([]byte, error) {
	t.Helper()
	p := writeFile(t, append([]byte("junk!"), msg...))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	r, err := envelope.Decrypt(bg, atFile{f}, kr, envelope.DecryptOptions{Concurrency: conc})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out bytes.Buffer
	if _, err := io.Copy(&out, r); err != nil {
		return nil, err
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != int64(5+len(msg)) {
		t.Fatalf("position after the message %d, want %d", pos, 5+len(msg))
	}
	return out.Bytes(), nil
}

// decryptSequential decrypts msg through a reader that cannot seek.
func decryptSequential(kr envelope.Keyring, msg []byte) ([]byte, error) {
	r, err := envelope.Decrypt(bg, iotest.HalfReader(bytes.NewReader(msg)), kr, envelope.DecryptOptions{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// TestParallelReadDecrypt: frames read by the opening goroutines come out
// in order, whatever the concurrency; a cut, a changed byte or trailing
// bytes anywhere in the body fail as on the sequential path, with the same
// error, and nothing after a bad frame is released.
func TestParallelReadDecrypt(t *testing.T) {
	kr := aesKeyring(t, "pread", 1)
	const frame = 4096
	for _, n := range []int{1 << 20, 1<<20 + 100} {
		pt := pattern(n)
		msg, err := envelope.EncryptBytes(bg, pt, kr, envelope.EncryptOptions{FrameLength: frame})
		if err != nil {
			t.Fatal(err)
		}
		for _, conc := range []int{1, 2, 5} {
			if got, err := decryptAt(t, kr, msg, conc); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%d bytes, concurrency %d: %v", n, conc, err)
			}
		}
		hdr, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wire := frame + 32
		body := hdr.HeaderLength
		final := body + (len(msg)-body-1)/wire*wire
		var spots []int
		for _, at := range []int{body, body + wire, body + 200*wire, final} {
			spots = append(spots, at-1, at, at+1, at+3, at+4, at+15, at+16, at+20, at+23, at+24, at+wire/2)
		}
		spots = append(spots, len(msg)-17, len(msg)-16, len(msg)-1)
		for _, at := range spots {
			if at >= len(msg) {
				continue
			}
			cut := msg[:at]
			bad := bytes.Clone(msg)
			bad[at] ^= 0x40
			for _, m := range [][]byte{cut, bad, append(bytes.Clone(msg), msg[at:]...)} {
				_, want := decryptSequential(kr, m)
				_, got := decryptAt(t, kr, m, 2)
				if want == nil || got == nil || got.Error() != want.Error() {
					t.Fatalf("%d bytes, change at %d (%d bytes): parallel reads %v, sequential %v", n, at, len(m), got, want)
				}
			}
		}
	}
}

// alignRecorder is a file that counts the reads of more than a cache line
// whose destination is not on one.
type alignRecorder struct {
	atFile
	mu               sync.Mutex
	reads, unaligned int
}

func (a *alignRecorder) note(p []byte) {
	if len(p) < 64 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reads++
	if uintptr(unsafe.Pointer(unsafe.SliceData(p)))%64 != 0 {
		a.unaligned++
	}
}

func (a *alignRecorder) Read(p []byte) (int, error) { a.note(p); return a.f.Read(p) }
func (a *alignRecorder) ReadAt(p []byte, off int64) (int, error) {
	a.note(p)
	return a.f.ReadAt(p, off)
}

// TestEncryptReadsAligned: the Writer reads plaintext into cache-line
// aligned memory, in parallel and sequentially, but for the final frame,
// whose longer prefix moves it: the kernel copies into a misaligned
// destination up to four times slower.
func TestEncryptReadsAligned(t *testing.T) {
	kr := aesKeyring(t, "aligned", 1)
	p := writeFile(t, pattern(3<<20+100))
	for _, declared := range []int64{3<<20 + 100, -1} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		rec := &alignRecorder{atFile: atFile{f}}
		w, err := envelope.Encrypt(bg, io.Discard, kr, envelope.EncryptOptions{PlaintextLength: declared})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.ReadFrom(rec); err != nil || w.Close() != nil {
			t.Fatal(err)
		}
		f.Close()
		if rec.reads < 48 || rec.unaligned > 1 {
			t.Errorf("declared %d: %d of %d reads into misaligned memory, want at most the final frame's", declared, rec.unaligned, rec.reads)
		}
	}
}

// MessageLength is the exact length of what an unsigned writer writes, for
// every place the declared length can fall against the frames, and -1 when
// the length was not declared or the suite is signed; Header.PlaintextLength
// inverts it.
func TestMessageLength(t *testing.T) {
	kr := aesKeyring(t, "length", 1)
	const fl = 4096
	for _, n := range []int64{1, fl - 1, fl, fl + 1, 3 * fl, 3*fl + 5} {
		var out bytes.Buffer
		w, err := envelope.Encrypt(bg, &out, kr, envelope.EncryptOptions{FrameLength: fl, PlaintextLength: n, Context: map[string]string{"n": fmt.Sprint(n)}})
		if err != nil {
			t.Fatal(err)
		}
		predicted := w.MessageLength()
		if _, err := w.Write(pattern(int(n))); err != nil || w.Close() != nil {
			t.Fatal(err)
		}
		if predicted != int64(out.Len()) {
			t.Errorf("plaintext %d: MessageLength %d, wrote %d", n, predicted, out.Len())
		}
		if got := w.Header().PlaintextLength(int64(out.Len())); got != n {
			t.Errorf("plaintext %d: Header.PlaintextLength of the message %d", n, got)
		}
		for _, bad := range []int64{int64(out.Len()) - 1, int64(out.Len()) + 16, int64(w.Header().HeaderLength)} {
			if got := w.Header().PlaintextLength(bad); got == n {
				t.Errorf("plaintext %d: a message of %d bytes also predicted %d", n, bad, got)
			}
		}
	}
	for _, opts := range []envelope.EncryptOptions{{}, {PlaintextLength: 10, Suite: envelope.SuiteCommittedSigned}} {
		w, err := envelope.Encrypt(bg, io.Discard, kr, opts)
		if err != nil {
			t.Fatal(err)
		}
		if n := w.MessageLength(); n != -1 {
			t.Errorf("%+v: MessageLength %d, want -1", opts, n)
		}
		if n := w.Header().PlaintextLength(1 << 20); opts.Suite == envelope.SuiteCommittedSigned && n != -1 {
			t.Errorf("signed: Header.PlaintextLength %d, want -1", n)
		}
	}
}
