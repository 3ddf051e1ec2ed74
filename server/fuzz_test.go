package server

import (
	"bytes"
	"testing"
)

// FuzzParseBlob: no input panics the blob parser, and whatever it
// accepts marshals back to the same bytes.
func FuzzParseBlob(f *testing.F) {
	good := (&blob{keyID: "k", data: sealedFor(1)}).marshal()
	f.Add(good)
	f.Add([]byte("KSK1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := parseBlob(raw)
		if err != nil {
			return
		}
		if got := b.marshal(); !bytes.Equal(got, raw) {
			t.Fatalf("round trip changed the blob")
		}
	})
}
