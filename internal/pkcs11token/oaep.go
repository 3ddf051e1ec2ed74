package pkcs11token

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
)

// errOAEP is the single opaque error for every OAEP decoding failure, so a
// caller cannot tell which check failed (Manger's attack).
var errOAEP = errors.New("hsm: RSA-OAEP decoding failed")

// oaepDecodeSHA256 removes RSA-OAEP padding with SHA-256, MGF1-SHA-256 and
// an empty label from em, the k-byte result of a raw RSA decryption
// (RFC 8017 section 7.1.2, step 3). It runs in time independent of em's
// contents. It is used for tokens whose CKM_RSA_PKCS_OAEP supports only
// SHA-1 (SoftHSM 2.6): the token performs the private-key operation with
// CKM_RSA_X_509 and the padding check happens here.
func oaepDecodeSHA256(em []byte, k int) ([]byte, error) {
	h := sha256.New()
	hLen := h.Size()
	if k < 2*hLen+2 || len(em) > k {
		return nil, errOAEP
	}
	// A token may drop leading zero bytes of the raw result; restore them.
	full := make([]byte, k)
	copy(full[k-len(em):], em)
	y, maskedSeed, db := full[0], full[1:1+hLen], full[1+hLen:]
	seed := make([]byte, hLen)
	copy(seed, maskedSeed)
	mgf1XOR(h, seed, db)
	mgf1XOR(h, db, seed)
	lHash := sha256.Sum256(nil)
	good := subtle.ConstantTimeByteEq(y, 0) & subtle.ConstantTimeCompare(db[:hLen], lHash[:])
	// DB = lHash ‖ PS (zero bytes) ‖ 0x01 ‖ M: find the 0x01 without branching on data.
	rest := db[hLen:]
	lookingForOne, index, invalid := 1, 0, 0
	for i, b := range rest {
		isZero := subtle.ConstantTimeByteEq(b, 0)
		isOne := subtle.ConstantTimeByteEq(b, 1)
		index = subtle.ConstantTimeSelect(lookingForOne&isOne, i, index)
		lookingForOne = subtle.ConstantTimeSelect(isOne, 0, lookingForOne)
		invalid = subtle.ConstantTimeSelect(lookingForOne&^isZero&1, 1, invalid)
	}
	if good&^invalid&^lookingForOne&1 != 1 {
		return nil, errOAEP
	}
	return append([]byte(nil), rest[index+1:]...), nil
}

// mgf1XOR xors out with MGF1(seed) (RFC 8017 appendix B.2.1) using h.
func mgf1XOR(h hash.Hash, out, seed []byte) {
	var counter [4]byte
	var digest []byte
	for done, c := 0, uint32(0); done < len(out); c++ {
		binary.BigEndian.PutUint32(counter[:], c)
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		digest = h.Sum(digest[:0])
		done += subtle.XORBytes(out[done:], out[done:], digest)
	}
}
