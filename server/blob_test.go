package server

import (
	"bytes"
	"testing"

	"github.com/keystack/keystack/internal/serverstore"
)

func sealedFor(v int) serverstore.SealedData {
	return serverstore.SealedData{Version: v, Nonce: bytes.Repeat([]byte{7}, nonceSize), Ciphertext: bytes.Repeat([]byte{9}, tagSize+3)}
}

func TestBlobLayout(t *testing.T) {
	b := &blob{keyID: "abc", data: sealedFor(258)}
	raw := b.marshal()
	want := append([]byte("KSK1\x03abc\x00\x00\x01\x02"), bytes.Repeat([]byte{7}, 12)...)
	if !bytes.HasPrefix(raw, want) || len(raw) != len(want)+tagSize+3 {
		t.Fatalf("layout %x", raw)
	}
	for _, bad := range [][]byte{nil, []byte("KSK2\x03abc"), raw[:len(raw)-1][:20], append([]byte("KSK1\x00"), raw[5:]...)} {
		if _, err := parseBlob(bad); err == nil {
			t.Errorf("parsed %x", bad)
		}
	}
	// The context is bound canonically: order-independent, length-prefixed.
	a1 := blobAAD("k", map[string]string{"a": "b", "c": "d"})
	a2 := blobAAD("k", map[string]string{"c": "d", "a": "b"})
	a3 := blobAAD("k", map[string]string{"a": "bc", "": "d"})
	if !bytes.Equal(a1, a2) || bytes.Equal(a1, a3) || bytes.Equal(a1, blobAAD("k2", map[string]string{"a": "b", "c": "d"})) {
		t.Error("blob AAD is not canonical or not binding")
	}
}
