package envelope_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// TestWriterHeaderIsWhatWasWritten: Writer.Header reports the header the
// writer put on the wire, field for field as Inspect reads it back, for
// each suite and with and without stored and required context, before
// and after the first byte is written.
func TestWriterHeaderIsWhatWasWritten(t *testing.T) {
	kr := aesKeyring(t, "k1", 1)
	cases := map[string]envelope.EncryptOptions{
		"no context": {},
		"context":    {Context: map[string]string{"tenant": "acme", "app": "x"}, FrameLength: 4096},
		"required":   {Context: map[string]string{"tenant": "acme", "app": "x"}, RequiredContextKeys: []string{"app"}},
		"signed":     {Suite: envelope.SuiteCommittedSigned, Context: map[string]string{"tenant": "acme"}},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			w, err := envelope.Encrypt(bg, &out, kr, opts)
			if err != nil {
				t.Fatal(err)
			}
			before := w.Header()
			if out.Len() != 0 {
				t.Fatalf("Encrypt wrote %d bytes before the first Write", out.Len())
			}
			if _, err := w.Write([]byte("some plaintext")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := envelope.Inspect(bytes.NewReader(out.Bytes()), envelope.InspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sameHeader(t, before, got)
			if w.Header() != before {
				t.Error("Header changed while writing")
			}
		})
	}
}

func sameHeader(t *testing.T, w, r *envelope.Header) {
	t.Helper()
	if w.Version != r.Version || w.Suite != r.Suite || !bytes.Equal(w.MessageID, r.MessageID) ||
		w.ContentType != r.ContentType || w.FrameLength != r.FrameLength || w.HeaderLength != r.HeaderLength {
		t.Errorf("writer header %+v, read back %+v", *w, *r)
	}
	if len(w.EncryptionContext)+len(r.EncryptionContext) > 0 && !reflect.DeepEqual(w.EncryptionContext, r.EncryptionContext) {
		t.Errorf("context %v, read back %v", w.EncryptionContext, r.EncryptionContext)
	}
	if !reflect.DeepEqual(w.EncryptedDataKeys, r.EncryptedDataKeys) {
		t.Errorf("EDKs %v, read back %v", w.EncryptedDataKeys, r.EncryptedDataKeys)
	}
	if !bytes.Equal(w.CommitKey(), r.CommitKey()) || !bytes.Equal(w.AuthTag(), r.AuthTag()) || !bytes.Equal(w.AuthIV(), r.AuthIV()) {
		t.Error("commitment key, header IV or tag differ from what was written")
	}
}
