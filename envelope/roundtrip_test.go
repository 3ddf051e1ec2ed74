package envelope_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// bodyLen is the framed body size for n plaintext bytes with frame length
// f, when an exact multiple ends with a full final frame.
func bodyLen(n, f int) int {
	full, rem := n/f, n%f
	if rem == 0 && full > 0 {
		full, rem = full-1, f
	}
	return full*(f+32) + rem + 40
}

func TestRoundTrip(t *testing.T) {
	kr := aesKeyring(t, "k1", 1)
	for _, suite := range []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteCommittedSigned} {
		for _, f := range []int{1, 17, 4096, 65536} {
			sizes := []int{0, 1, f - 1, f, f + 1, 10*f + 3}
			for _, n := range sizes {
				for _, conc := range []int{1, 4} {
					name := fmt.Sprintf("%v/frame=%d/n=%d/conc=%d", suite, f, n, conc)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						roundTrip(t, kr, suite, f, n, conc)
					})
				}
			}
		}
	}
}

func roundTrip(t *testing.T, kr envelope.Keyring, suite envelope.Suite, f, n, conc int) {
	pt := pattern(n)
	ec := map[string]string{"purpose": "round trip", "size": fmt.Sprint(n)}
	opts := envelope.EncryptOptions{Suite: suite, FrameLength: f, Context: ec, Concurrency: conc}
	dopts := envelope.DecryptOptions{Context: ec, Concurrency: conc}

	one, err := envelope.EncryptBytes(bg, pt, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	stream := encryptStream(t, kr, pt, opts)
	for i, msg := range [][]byte{one, stream} {
		hdr, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		footer := 0
		if suite.Signed() {
			footer = 2 + 103
		}
		if want := hdr.HeaderLength + bodyLen(n, f) + footer; len(msg) != want {
			t.Fatalf("message %d is %d bytes, want %d", i, len(msg), want)
		}
		got, h, err := envelope.DecryptBytes(bg, msg, kr, dopts)
		if err != nil {
			t.Fatalf("DecryptBytes(message %d): %v", i, err)
		}
		if !bytes.Equal(got, pt) || h.Suite != suite || h.FrameLength != uint32(f) {
			t.Fatalf("message %d: round trip mismatch", i)
		}
		r, err := envelope.Decrypt(bg, iotest.OneByteReader(bytes.NewReader(msg)), kr, dopts)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(iotest.OneByteReader(r))
		if err != nil {
			t.Fatalf("streaming decrypt of message %d: %v", i, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("message %d: streaming round trip mismatch", i)
		}
		r.Close()
	}
}

// TestReaderContract runs iotest.TestReader over a multi-frame message.
func TestReaderContract(t *testing.T) {
	kr := aesKeyring(t, "k1", 1)
	pt := pattern(10*64 + 5)
	msg, err := envelope.EncryptBytes(bg, pt, kr, envelope.EncryptOptions{FrameLength: 64})
	if err != nil {
		t.Fatal(err)
	}
	r, err := envelope.Decrypt(bg, bytes.NewReader(msg), kr, envelope.DecryptOptions{Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := iotest.TestReader(r, pt); err != nil {
		t.Fatal(err)
	}
}

func TestMultipleMasterKeys(t *testing.T) {
	a, b, rsaKR := aesKeyring(t, "a", 1), aesKeyring(t, "b", 2), rsaKeyring(t)
	multi := keyring.NewMulti(a, b, rsaKR)
	pt := pattern(5000)
	for _, suite := range []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteCommittedSigned} {
		msg, err := envelope.EncryptBytes(bg, pt, multi, envelope.EncryptOptions{Suite: suite, FrameLength: 1000})
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(hdr.EncryptedDataKeys) != 3 {
			t.Fatalf("%d EDKs, want 3", len(hdr.EncryptedDataKeys))
		}
		for i, kr := range []envelope.Keyring{a, b, rsaKR, multi} {
			got, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{})
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("keyring %d: %v", i, err)
			}
		}
		_, _, err = envelope.DecryptBytes(bg, msg, aesKeyring(t, "other", 9), envelope.DecryptOptions{})
		if !errorsIs(err, envelope.ErrNoDecryptKey) {
			t.Fatalf("unrelated keyring: %v, want ErrNoDecryptKey", err)
		}
	}
}
