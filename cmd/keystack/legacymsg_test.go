package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"os"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// cmdLegacyMsg runs "legacymsg KEYFILE PLAIN OUT": it writes to OUT a
// message format v1 message of PLAIN under the legacy suite 0x0078
// (AES-256-GCM, no key derivation, no commitment), built here from the
// format specification, with one final frame and its data key wrapped by
// the raw AES key in KEYFILE (base64) under namespace "spec", key "aes".
func cmdLegacyMsg(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: legacymsg KEYFILE PLAIN OUT")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ts.ReadFile(args[0])))
	ts.Check(err)
	kr, err := keyring.NewRawAES("spec", "aes", key)
	ts.Check(err)
	pt, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	m := &envelope.EncryptionMaterials{Suite: envelope.Suite(0x0078), EncryptionContext: map[string]string{}, PlaintextLength: -1}
	ts.Check(kr.OnEncrypt(context.Background(), m))
	block, err := aes.NewCipher(m.DataKey)
	ts.Check(err)
	gcm, err := cipher.NewGCM(block)
	ts.Check(err)
	id := make([]byte, 16)
	rand.Read(id)
	hdr := legacyHeaderBody(id, m.EncryptedDataKeys, len(pt))
	iv := make([]byte, 12)
	rand.Read(iv)
	msg := append(append(hdr, iv...), gcm.Seal(nil, iv, nil, hdr)...)
	// The single final frame: sequence number 1, IV = the zero-padded number.
	fiv := make([]byte, 12)
	binary.BigEndian.PutUint32(fiv[8:], 1)
	aad := append(append([]byte(nil), id...), "AWSKMSEncryptionClient Final Frame"...)
	aad = binary.BigEndian.AppendUint32(aad, 1)
	aad = binary.BigEndian.AppendUint64(aad, uint64(len(pt)))
	msg = binary.BigEndian.AppendUint32(msg, 0xFFFFFFFF)
	msg = binary.BigEndian.AppendUint32(msg, 1)
	msg = append(msg, fiv...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(pt)))
	msg = append(msg, gcm.Seal(nil, fiv, pt, aad)...)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), msg, 0o644))
}

// legacyHeaderBody is a v1 header body: version 1, type 0x80, suite
// 0x0078, message ID, empty context, the EDKs, framed content with 12-byte
// IVs and a frame length above the plaintext's.
func legacyHeaderBody(id []byte, edks []envelope.EncryptedDataKey, ptLen int) []byte {
	b := []byte{0x01, 0x80, 0x00, 0x78}
	b = append(b, id...)
	b = binary.BigEndian.AppendUint16(b, 0) // no context
	b = binary.BigEndian.AppendUint16(b, uint16(len(edks)))
	for _, e := range edks {
		for _, f := range [][]byte{[]byte(e.ProviderID), e.ProviderInfo, e.Ciphertext} {
			b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
			b = append(b, f...)
		}
	}
	b = append(b, 0x02, 0, 0, 0, 0, 12)
	return binary.BigEndian.AppendUint32(b, uint32(max(ptLen+1, 4096)))
}
