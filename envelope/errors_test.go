package envelope_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// spyKeyring records the data key its inner keyring generated, so tests
// can check that it never shows up in an error.
type spyKeyring struct {
	envelope.Keyring
	dataKey []byte
}

func (s *spyKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	err := s.Keyring.OnEncrypt(ctx, m)
	s.dataKey = bytes.Clone(m.DataKey)
	return err
}

func TestSentinelsAndNoSecretsInErrors(t *testing.T) {
	spy := &spyKeyring{Keyring: aesKeyring(t, "k1", 1)}
	pt := []byte("top secret plaintext that must never leak")
	ec := map[string]string{"a": "b"}
	msg, err := envelope.EncryptBytes(bg, pt, spy, envelope.EncryptOptions{FrameLength: 16, Context: ec})
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
	two, err := envelope.EncryptBytes(bg, pt, newMulti(t), envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dec := func(m []byte, opts envelope.DecryptOptions) error {
		if opts.Context == nil {
			opts.Context = ec
		}
		_, _, err := envelope.DecryptBytes(bg, m, spy, opts)
		return err
	}
	mut := func(off int, b ...byte) []byte { m := bytes.Clone(msg); copy(m[off:], b); return m }
	w, _ := envelope.Encrypt(bg, io.Discard, spy, envelope.EncryptOptions{})
	w.Close()
	_, closedErr := w.Write([]byte("x"))
	_, optErr := envelope.EncryptBytes(bg, pt, spy, envelope.EncryptOptions{FrameLength: -1})
	_, suiteErr := envelope.EncryptBytes(bg, pt, spy, envelope.EncryptOptions{Suite: envelope.Suite(0x0078)})
	_, ctxErr := envelope.EncryptBytes(bg, pt, spy, envelope.EncryptOptions{Context: map[string]string{envelope.PublicKeyContextKey: "x"}})
	cases := []struct {
		name   string
		err    error
		target error
	}{
		{"tag", dec(mut(len(msg)-1, msg[len(msg)-1]^1), envelope.DecryptOptions{}), envelope.ErrAuthentication},
		{"header tag", dec(mut(hdr.HeaderLength-1, msg[hdr.HeaderLength-1]^1), envelope.DecryptOptions{}), envelope.ErrAuthentication},
		{"commit key", dec(mut(hdr.HeaderLength-17, msg[hdr.HeaderLength-17]^1), envelope.DecryptOptions{}), envelope.ErrAuthentication},
		{"unknown suite", dec(mut(1, 0x06, 0x78), envelope.DecryptOptions{}), envelope.ErrUnsupportedSuite},
		{"reserved suite", dec(mut(1, 0, 0), envelope.DecryptOptions{}), envelope.ErrUnsupportedSuite},
		{"version", dec(mut(0, 3), envelope.DecryptOptions{}), envelope.ErrMalformed},
		{"truncated", dec(msg[:len(msg)-1], envelope.DecryptOptions{}), envelope.ErrTruncated},
		{"trailing", dec(append(bytes.Clone(msg), 1), envelope.DecryptOptions{}), envelope.ErrTrailingData},
		{"no key", dec(two, envelope.DecryptOptions{}), envelope.ErrNoDecryptKey},
		{"context", dec(msg, envelope.DecryptOptions{Context: map[string]string{"a": "c"}}), envelope.ErrContextMismatch},
		{"too many EDKs", dec(two, envelope.DecryptOptions{MaxEncryptedDataKeys: 1}), envelope.ErrTooManyEncryptedDataKeys},
		{"reserved context key", ctxErr, envelope.ErrInvalidContext},
		{"closed", closedErr, envelope.ErrClosed},
		{"frame length", optErr, envelope.ErrInvalidOptions},
		{"legacy write", suiteErr, envelope.ErrUnsupportedSuite},
	}
	secrets := [][]byte{spy.dataKey, testAESKey(1), pt[:10]}
	for _, c := range cases {
		if !errors.Is(c.err, c.target) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.target)
			continue
		}
		for _, s := range secrets {
			for _, enc := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), strings.Trim(fmt.Sprint(s), "[]")} {
				if strings.Contains(c.err.Error(), enc) {
					t.Errorf("%s: error %q contains secret material", c.name, c.err)
				}
			}
		}
	}
	var pe *envelope.ParseError
	if err := dec(mut(0, 3), envelope.DecryptOptions{}); !errors.As(err, &pe) || pe.Field != "version" {
		t.Errorf("version error %v is not a ParseError for field version", err)
	}
}

func newMulti(t *testing.T) envelope.Keyring {
	return keyring.NewMulti(aesKeyring(t, "x1", 7), aesKeyring(t, "x2", 8))
}

// TestNoGoroutineLeaks abandons readers and writers midway, with and
// without Close, and checks every pipeline goroutine exits.
func TestNoGoroutineLeaks(t *testing.T) {
	kr := aesKeyring(t, "k1", 1)
	msg, err := envelope.EncryptBytes(bg, pattern(100*64), kr, envelope.EncryptOptions{FrameLength: 64})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		r, err := envelope.Decrypt(bg, bytes.NewReader(msg), kr, envelope.DecryptOptions{Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(make([]byte, 64*10)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			r.Close()
			r.Close()
		}
		w, err := envelope.Encrypt(bg, io.Discard, kr, envelope.EncryptOptions{FrameLength: 64, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(pattern(64 * 20)) // abandoned without Close
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after", before, runtime.NumGoroutine())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEDKCountCheckedFirst: a header announcing 65535 EDKs and then ending
// fails on the count, before any entry is read.
func TestEDKCountCheckedFirst(t *testing.T) {
	prefix := append([]byte{0x02, 0x04, 0x78}, make([]byte, 32)...)
	prefix = append(prefix, 0, 0, 0xFF, 0xFF)
	_, err := envelope.Inspect(bytes.NewReader(prefix), envelope.InspectOptions{})
	if !errors.Is(err, envelope.ErrTooManyEncryptedDataKeys) {
		t.Fatalf("got %v, want ErrTooManyEncryptedDataKeys", err)
	}
	_, err = envelope.Inspect(bytes.NewReader(prefix), envelope.InspectOptions{MaxEncryptedDataKeys: 65535})
	if !errors.Is(err, envelope.ErrTruncated) {
		t.Fatalf("with a high limit: %v, want ErrTruncated", err)
	}
	zero := append(prefix[:len(prefix)-2:len(prefix)-2], 0, 0)
	if _, err := envelope.Inspect(bytes.NewReader(zero), envelope.InspectOptions{}); !errors.Is(err, envelope.ErrMalformed) {
		t.Fatalf("zero EDKs: %v, want ErrMalformed", err)
	}
}
