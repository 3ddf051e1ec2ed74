package envelope_test

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/esdktest"
)

// TestInMemoryPathAgrees: DecryptBytes opens unsigned messages in memory,
// without the streaming Reader. For every truncation, every bit flip and
// trailing bytes, of framed (three frames, one frame, an empty final frame)
// and non-framed messages, it must refuse exactly what the Reader refuses,
// with the same error, and return what the Reader returns.
func TestInMemoryPathAgrees(t *testing.T) {
	kr := aesKeyring(t, "mem", 1)
	ec := map[string]string{"a": "b"}
	var msgs [][]byte
	for _, n := range []int{2*advFrame + 5, 2 * advFrame, 3} {
		msg, err := envelope.EncryptBytes(bg, pattern(n), kr, envelope.EncryptOptions{
			Suite: envelope.SuiteCommitted, FrameLength: advFrame, Context: ec})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, msg)
	}
	nf := newSpecMessage(t, kr, esdktest.HeaderSpec{Context: ec, NonFramed: true})
	msgs = append(msgs, append(bytes.Clone(nf.Header), nf.NonFramed(esdktest.RandomIV(0), pattern(40))...))
	opts := envelope.DecryptOptions{Context: ec}
	for i, msg := range msgs {
		samePaths(t, msg, kr, opts, true)
		samePaths(t, append(bytes.Clone(msg), 0), kr, opts, false)
		for cut := range len(msg) {
			samePaths(t, msg[:cut], kr, opts, false)
		}
		bad := bytes.Clone(msg)
		for j := range bad {
			for bit := range 8 {
				bad[j] ^= 1 << bit
				samePaths(t, bad, kr, opts, false)
				bad[j] ^= 1 << bit
			}
		}
		t.Logf("message %d: %d bytes, every cut and flip agreed", i, len(msg))
	}
	// A non-framed body longer than MaxFrameLength (allowed up to
	// 16 MiB) is read alike.
	big := newSpecMessage(t, kr, esdktest.HeaderSpec{Context: ec, NonFramed: true})
	msg := append(bytes.Clone(big.Header), big.NonFramed(esdktest.RandomIV(0), pattern(5000))...)
	samePaths(t, msg, kr, envelope.DecryptOptions{Context: ec, MaxFrameLength: 4096}, true)
}

// samePaths decrypts msg with DecryptBytes and through the streaming
// Reader (a reader that is not a *bytes.Reader) and fails unless both give
// the same plaintext or the same error; ok says whether msg is valid.
func samePaths(t *testing.T, msg []byte, kr envelope.Keyring, opts envelope.DecryptOptions, ok bool) {
	t.Helper()
	got, _, err := envelope.DecryptBytes(bg, msg, kr, opts)
	var streamed []byte
	r, serr := envelope.Decrypt(bg, iotest.HalfReader(bytes.NewReader(msg)), kr, opts)
	if serr == nil {
		streamed, serr = io.ReadAll(r)
		r.Close()
	}
	switch {
	case (err == nil) != (serr == nil):
		t.Fatalf("%d bytes: in memory %v, streamed %v", len(msg), err, serr)
	case err != nil && err.Error() != serr.Error():
		t.Fatalf("%d bytes: in memory %q, streamed %q", len(msg), err, serr)
	case err == nil && !bytes.Equal(got, streamed):
		t.Fatalf("%d bytes: plaintexts differ", len(msg))
	case (err == nil) != ok:
		t.Fatalf("%d bytes: error %v, valid %v", len(msg), err, ok)
	}
}
