package envelope_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// rewrapHeader reads src's header with Inspect and rewraps it, as a
// caller of RewrapHeader does.
func rewrapHeader(src io.Reader, from, to envelope.Keyring, opts envelope.DecryptOptions) ([]byte, *envelope.Header, error) {
	old, err := envelope.Inspect(src, envelope.InspectOptions{MaxEncryptedDataKeys: opts.MaxEncryptedDataKeys})
	if err != nil {
		return nil, nil, err
	}
	newHeader, err := envelope.RewrapHeader(bg, old, from, to, opts)
	return newHeader, old, err
}

// rewrapSigned reads src's header with Inspect and rewraps the message
// to dst, the body read from src where Inspect left it.
func rewrapSigned(src io.Reader, dst io.Writer, from, to envelope.Keyring, opts envelope.DecryptOptions) (*envelope.Header, error) {
	old, err := envelope.Inspect(src, envelope.InspectOptions{MaxEncryptedDataKeys: opts.MaxEncryptedDataKeys})
	if err != nil {
		return nil, err
	}
	return old, envelope.RewrapSigned(bg, old, src, dst, from, to, opts)
}

func TestRewrapHeader(t *testing.T) {
	from, to := aesKeyring(t, "old", 1), rsaKeyring(t)
	ec := map[string]string{"tenant": "acme", "stored": "yes"}
	pt := pattern(5*100 + 7)
	msg, err := envelope.EncryptBytes(bg, pt, from, envelope.EncryptOptions{FrameLength: 100, Context: ec, RequiredContextKeys: []string{"tenant"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := envelope.DecryptOptions{Context: ec}
	src := bytes.NewReader(msg)
	newHeader, old, err := rewrapHeader(src, from, to, opts)
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != len(msg)-old.HeaderLength {
		t.Fatalf("Inspect read %d bytes past the header", len(msg)-old.HeaderLength-src.Len())
	}
	body := msg[old.HeaderLength:]
	rewrapped := append(bytes.Clone(newHeader), body...)
	if !bytes.Equal(rewrapped[len(newHeader):], body) {
		t.Fatal("body changed")
	}
	got, hdr, err := envelope.DecryptBytes(bg, rewrapped, to, opts)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt rewrapped with new key: %v", err)
	}
	if !bytes.Equal(hdr.MessageID, old.MessageID) || hdr.EncryptionContext["stored"] != "yes" || len(hdr.EncryptionContext) != 1 {
		t.Fatalf("rewrap changed message ID or stored context: %v", hdr.EncryptionContext)
	}
	if _, _, err := envelope.DecryptBytes(bg, rewrapped, from, opts); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("old key still decrypts: %v", err)
	}
	if _, _, err := envelope.DecryptBytes(bg, rewrapped, to, envelope.DecryptOptions{Context: map[string]string{"stored": "yes"}}); err == nil {
		t.Fatal("required context no longer required after rewrap")
	}
	if _, _, err := rewrapHeader(bytes.NewReader(msg), to, from, opts); !errors.Is(err, envelope.ErrNoDecryptKey) {
		t.Fatalf("rewrap with the wrong source key: %v", err)
	}
	signed, _ := envelope.EncryptBytes(bg, pt, from, envelope.EncryptOptions{Suite: envelope.SuiteCommittedSigned})
	if _, _, err := rewrapHeader(bytes.NewReader(signed), from, to, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrUnsupportedSuite) {
		t.Fatalf("RewrapHeader on a signed message: %v", err)
	}
}

func TestRewrapSigned(t *testing.T) {
	from, to := aesKeyring(t, "old", 1), aesKeyring(t, "new", 2)
	ec := map[string]string{"tenant": "acme"}
	pt := pattern(7*64 + 1)
	msg, err := envelope.EncryptBytes(bg, pt, from, envelope.EncryptOptions{Suite: envelope.SuiteCommittedSigned, FrameLength: 64, Context: ec})
	if err != nil {
		t.Fatal(err)
	}
	opts := envelope.DecryptOptions{Context: ec}
	var out bytes.Buffer
	old, err := rewrapSigned(bytes.NewReader(msg), &out, from, to, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, hdr, err := envelope.DecryptBytes(bg, out.Bytes(), to, opts)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt re-signed message: %v", err)
	}
	oldBody := msg[old.HeaderLength : len(msg)-105]
	newBody := out.Bytes()[hdr.HeaderLength : out.Len()-105]
	if !bytes.Equal(oldBody, newBody) {
		t.Fatal("body bytes changed")
	}
	if hdr.EncryptionContext[envelope.PublicKeyContextKey] == old.EncryptionContext[envelope.PublicKeyContextKey] {
		t.Fatal("signing key was not replaced")
	}
	// A tampered body is caught by the old signature.
	bad := bytes.Clone(msg)
	bad[old.HeaderLength+5] ^= 1
	if _, err := rewrapSigned(bytes.NewReader(bad), &bytes.Buffer{}, from, to, opts); !errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("tampered body: %v, want ErrAuthentication", err)
	}
	for _, cut := range []int{len(msg) - 1, len(msg) - 200} {
		if _, err := rewrapSigned(bytes.NewReader(msg[:cut]), &bytes.Buffer{}, from, to, opts); !errors.Is(err, envelope.ErrTruncated) {
			t.Fatalf("truncated at %d: %v, want ErrTruncated", cut, err)
		}
	}
	if _, err := rewrapSigned(bytes.NewReader(append(bytes.Clone(msg), 0)), &bytes.Buffer{}, from, to, opts); !errors.Is(err, envelope.ErrTrailingData) {
		t.Fatalf("trailing data: %v", err)
	}
}

// TestRewrapSignedStreamsFrames: RewrapSigned copies frames through without
// holding them, so large frames cost it no memory (and need no
// MaxFrameLength: it never decrypts the body).
func TestRewrapSignedStreamsFrames(t *testing.T) {
	from, to := aesKeyring(t, "old", 1), aesKeyring(t, "new", 2)
	const frame = 16 << 20
	pt := pattern(frame + 1000)
	msg, err := envelope.EncryptBytes(bg, pt, from, envelope.EncryptOptions{Suite: envelope.SuiteCommittedSigned, FrameLength: frame, MaxFrameLength: frame})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.Grow(len(msg) + 4096)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := rewrapSigned(bytes.NewReader(msg), &out, from, to, envelope.DecryptOptions{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Fatalf("RewrapSigned allocated %d KiB for %d MiB frames", alloc>>10, frame>>20)
	}
	got, _, err := envelope.DecryptBytes(bg, out.Bytes(), to, envelope.DecryptOptions{MaxFrameLength: frame})
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("rewrapped message: %v", err)
	}
}

// TestRewrapInspected rewraps headers Inspect parsed, signed and not, and
// refuses a header no parse made.
func TestRewrapInspected(t *testing.T) {
	from, to := aesKeyring(t, "old", 1), aesKeyring(t, "new", 2)
	pt := pattern(3*64 + 5)
	for _, suite := range []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteCommittedSigned} {
		msg, err := envelope.EncryptBytes(bg, pt, from, envelope.EncryptOptions{Suite: suite, FrameLength: 64})
		if err != nil {
			t.Fatal(err)
		}
		old, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		if suite == envelope.SuiteCommitted {
			newHeader, err := envelope.RewrapHeader(bg, old, from, to, envelope.DecryptOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(newHeader, msg[old.HeaderLength:]...)
		} else {
			var buf bytes.Buffer
			if err := envelope.RewrapSigned(bg, old, bytes.NewReader(msg[old.HeaderLength:]), &buf, from, to, envelope.DecryptOptions{}); err != nil {
				t.Fatal(err)
			}
			out = buf.Bytes()
		}
		if got, _, err := envelope.DecryptBytes(bg, out, to, envelope.DecryptOptions{}); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%v: rewrapped message does not decrypt under the new key: %v", suite, err)
		}
		if _, _, err := envelope.DecryptBytes(bg, out, from, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrNoDecryptKey) {
			t.Fatalf("%v: old key still decrypts: %v", suite, err)
		}
		forged := &envelope.Header{Version: old.Version, Suite: old.Suite, MessageID: old.MessageID,
			EncryptionContext: old.EncryptionContext, EncryptedDataKeys: old.EncryptedDataKeys,
			ContentType: old.ContentType, FrameLength: old.FrameLength, HeaderLength: old.HeaderLength}
		if _, err := envelope.RewrapHeader(bg, forged, from, to, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrInvalidOptions) {
			t.Fatalf("%v: RewrapHeader of a hand-built header: %v", suite, err)
		}
		if err := envelope.RewrapSigned(bg, forged, bytes.NewReader(nil), io.Discard, from, to, envelope.DecryptOptions{}); !errors.Is(err, envelope.ErrInvalidOptions) {
			t.Fatalf("%v: RewrapSigned of a hand-built header: %v", suite, err)
		}
	}
}
