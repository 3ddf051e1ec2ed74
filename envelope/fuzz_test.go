package envelope_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/esdktest"
)

// fuzzSeeds are real messages: freshly generated ones under the fuzz key
// plus the committed fixed vectors. The fuzz tests fail without seeds.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	kr := aesKeyring(f, "fuzz", 3)
	var seeds [][]byte
	for _, suite := range bothSuites {
		for _, n := range []int{0, 1, 40} {
			msg, err := envelope.EncryptBytes(bg, pattern(n), kr, envelope.EncryptOptions{
				Suite: suite, FrameLength: 16, Context: map[string]string{"k": "v"}})
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, msg)
		}
	}
	// Shapes keystack does not write: a v2 non-framed body, random frame IVs.
	for _, nonFramed := range []bool{true, false} {
		m := newSpecMessage(f, kr, esdktest.HeaderSpec{NonFramed: nonFramed, FrameLength: 16})
		body := m.Framed(pattern(40), 16, esdktest.RandomIV)
		if nonFramed {
			body = m.NonFramed(esdktest.RandomIV(0), pattern(40))
		}
		seeds = append(seeds, append(bytes.Clone(m.Header), body...))
	}
	files, err := filepath.Glob(filepath.Join(fixedDir, "*.bin"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	if len(seeds) == 0 || len(files) == 0 {
		f.Fatalf("fuzz corpus too small: %d seeds, %d fixed vector files", len(seeds), len(files))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	return seeds
}

func FuzzParseHeader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		hdr, err := envelope.Inspect(bytes.NewReader(data), envelope.InspectOptions{})
		if err != nil {
			if hdr != nil {
				t.Fatal("header returned with an error")
			}
			return
		}
		if hdr.HeaderLength > len(data) || len(hdr.EncryptedDataKeys) == 0 ||
			len(hdr.EncryptedDataKeys) > 32 || !hdr.Suite.Known() {
			t.Fatalf("accepted an impossible header: %+v", hdr)
		}
		// Inspect reads exactly the header: parsing only its bytes gives the same length.
		again, err := envelope.Inspect(bytes.NewReader(data[:hdr.HeaderLength]), envelope.InspectOptions{})
		if err != nil || again.HeaderLength != hdr.HeaderLength {
			t.Fatalf("header not self-delimiting: %v", err)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	fuzzSeeds(f)
	kr := aesKeyring(f, "fuzz", 3)
	known := []error{envelope.ErrAuthentication, envelope.ErrMalformed, envelope.ErrTruncated,
		envelope.ErrTrailingData, envelope.ErrNoDecryptKey, envelope.ErrUnsupportedSuite,
		envelope.ErrTooManyEncryptedDataKeys, envelope.ErrContextMismatch, envelope.ErrKeyring, envelope.ErrFrameTooLarge}
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, _, err := envelope.DecryptBytes(bg, data, kr, envelope.DecryptOptions{Concurrency: 2})
		if err == nil {
			if len(pt) >= len(data) {
				t.Fatal("plaintext not shorter than the message")
			}
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("error outside the documented classes: %v", err)
	})
}
