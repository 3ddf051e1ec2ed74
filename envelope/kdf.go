package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
)

// deriveKeys returns the message's AES-GCM key and, for committing
// suites, its commit key (framework/algorithm-suites.md, "key derivation").
//
// v2: PRK = HKDF-Extract-SHA512(salt = messageID, ikm = data key), then
// key = Expand(PRK, suiteID ‖ "DERIVEKEY", 32) and commit = Expand(PRK, "COMMITKEY", 32).
// v1: identity, or HKDF-SHA256/384 with no salt and info = suiteID ‖ messageID.
func deriveKeys(s Suite, dataKey, messageID []byte) (key, commit []byte, err error) {
	if len(dataKey) != s.DataKeyLen() {
		return nil, nil, fmt.Errorf("%w: data key of %d bytes, suite %v needs %d", ErrKeyring, len(dataKey), s, s.DataKeyLen())
	}
	var sid [2]byte
	binary.BigEndian.PutUint16(sid[:], uint16(s))
	if s.Committing() {
		key, commit = expandCommitted(dataKey, messageID, sid)
		return key, commit, nil
	}
	var h func() hash.Hash
	switch s >> 8 {
	case 0x00:
		return append([]byte(nil), dataKey...), nil, nil
	case 0x01, 0x02:
		h = sha256.New
	default:
		h = sha512.New384
	}
	key, err = hkdf.Key(h, dataKey, nil, string(sid[:])+string(messageID), s.DataKeyLen())
	return key, nil, err
}

// expandCommitted is HKDF-SHA512 (RFC 5869) for the committing suites:
// both outputs are at most one hash long, so each Expand is the single
// block T(1) = HMAC(PRK, info ‖ 0x01). The HMAC keyed with PRK is set up
// once and cloned for the second block: one HMAC setup per message fewer
// than two hkdf.Expand calls, and none of the state marshalling that
// reusing it through Reset costs.
func expandCommitted(dataKey, messageID []byte, sid [2]byte) (key, commit []byte) {
	extract := hmac.New(sha512.New, messageID)
	extract.Write(dataKey)
	prk := extract.Sum(nil)
	defer clear(prk)
	mac := hmac.New(sha512.New, prk)
	commitMAC := cloneOrNew(mac, prk)
	mac.Write(sid[:])
	mac.Write(deriveKeyInfo)
	key = mac.Sum(nil)
	clear(key[32:])
	commitMAC.Write(commitKeyInfo)
	commit = commitMAC.Sum(nil)[:commitKeyLen]
	return key[:32], commit
}

// The HKDF info labels with T(1)'s counter byte. Package variables, since
// a []byte conversion passed to a hash.Hash allocates on every call.
var (
	deriveKeyInfo = []byte("DERIVEKEY\x01")
	commitKeyInfo = []byte("COMMITKEY\x01")
)

// cloneOrNew returns a copy of the fresh HMAC-SHA512 mac keyed with key:
// a clone of its state, or, should the hash ever not support cloning, a
// new HMAC with the same key, which computes the same values.
func cloneOrNew(mac hash.Hash, key []byte) hash.Hash {
	if c, ok := mac.(hash.Cloner); ok {
		if d, err := c.Clone(); err == nil {
			return d
		}
	}
	return hmac.New(sha512.New, key)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// headerAuthAAD is header body ‖ serialized required context
// (data-format/message-header.md#header-authentication-version-2-0).
func headerAuthAAD(body []byte, required map[string]string) ([]byte, error) {
	if len(required) == 0 {
		return body, nil
	}
	req, err := SerializeContext(required)
	if err != nil {
		return nil, err
	}
	aad := make([]byte, 0, len(body)+len(req))
	return append(append(aad, body...), req...), nil
}

// verifyHeader checks the commit key (constant time) and the header tag.
func verifyHeader(aead cipher.AEAD, hdr *Header, commit []byte, required map[string]string) error {
	if hdr.Suite.Committing() && subtle.ConstantTimeCompare(commit, hdr.commitKey) != 1 {
		return ErrAuthentication
	}
	aad, err := headerAuthAAD(hdr.body, required)
	if err != nil {
		return err
	}
	if _, err := aead.Open(nil, hdr.authIV, hdr.authTag, aad); err != nil {
		return ErrAuthentication
	}
	return nil
}
