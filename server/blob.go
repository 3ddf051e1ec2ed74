package server

import (
	"encoding/binary"
	"maps"
	"slices"

	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/internal/serverstore"
)

// Ciphertext blobs (SPEC.md): magic "KSK1", the key ID's length (1 byte)
// and bytes, the key version (4 bytes big-endian), the 12-byte GCM nonce,
// then the AES-256-GCM ciphertext with its 16-byte tag. Everything before
// the ciphertext is bound to it (see blobAAD).
const (
	blobMagic   = "KSK1"
	nonceSize   = 12
	tagSize     = 16
	maxBlobSize = 6144 // KMS's CiphertextBlob limit
)

// blob is a parsed ciphertext blob.
type blob struct {
	keyID string
	data  serverstore.SealedData
}

func (b *blob) marshal() []byte {
	h := append([]byte(blobMagic), byte(len(b.keyID)))
	h = append(h, b.keyID...)
	h = binary.BigEndian.AppendUint32(h, uint32(b.data.Version))
	h = append(h, b.data.Nonce...)
	return append(h, b.data.Ciphertext...)
}

// parseBlob parses a blob; any malformation is InvalidCiphertextException.
func parseBlob(raw []byte) (*blob, error) {
	bad := kmswire.Errorf("InvalidCiphertextException", "the ciphertext is not a keystack ciphertext blob")
	if len(raw) < len(blobMagic)+1 || len(raw) > maxBlobSize || string(raw[:len(blobMagic)]) != blobMagic {
		return nil, bad
	}
	n := int(raw[len(blobMagic)])
	rest := raw[len(blobMagic)+1:]
	if n == 0 || len(rest) < n+4+nonceSize+tagSize {
		return nil, bad
	}
	b := &blob{keyID: string(rest[:n])}
	rest = rest[n:]
	b.data.Version = int(binary.BigEndian.Uint32(rest))
	b.data.Nonce = slices.Clone(rest[4 : 4+nonceSize])
	b.data.Ciphertext = slices.Clone(rest[4+nonceSize:])
	return b, nil
}

// blobAAD is the additional data a blob is sealed with: a label, the key
// ID, and the encryption context in a canonical form (pairs sorted by key
// bytes, each string prefixed by its 2-byte length), so the context must
// be given again, exactly, to decrypt (as AWS KMS binds it). The version
// and nonce need no binding: each version has its own key, and GCM
// authenticates under the nonce.
func blobAAD(keyID string, ec map[string]string) []byte {
	aad := append([]byte("keystack-kms-blob-v1\x00"), byte(len(keyID)))
	aad = append(aad, keyID...)
	for _, k := range slices.Sorted(maps.Keys(ec)) {
		aad = binary.BigEndian.AppendUint16(aad, uint16(len(k)))
		aad = append(aad, k...)
		aad = binary.BigEndian.AppendUint16(aad, uint16(len(ec[k])))
		aad = append(aad, ec[k]...)
	}
	return aad
}
