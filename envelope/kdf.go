package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/hkdf"
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
	if s.Committing() && fips140.Enabled() {
		return standardCommitted(dataKey, messageID, sid)
	}
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
// block T(1) = HMAC(PRK, info ‖ 0x01).
//
// HMAC (RFC 2104) is computed here on SHA-512 directly rather than
// through crypto/hmac, which per message allocated sixteen objects and
// hashed PRK ⊕ opad once per Expand: the SHA-512 states after the key's
// ipad and opad blocks are computed once and cloned for the second Expand
// (the precomputation FIPS 198-1, section 6, allows). Every intermediate
// value lives in one kdfScratch, cleared before returning but for the two
// outputs. TestExpandCommittedIsHKDF holds it to crypto/hkdf. In FIPS
// 140-3 mode deriveKeys uses standardCommitted instead.
func expandCommitted(dataKey, messageID []byte, sid [2]byte) (key, commit []byte) {
	s := new(kdfScratch)
	defer s.clearSecrets()
	inner, outer := sha512.New(), sha512.New()
	s.keyHMAC(inner, outer, messageID)
	inner.Write(dataKey)
	prk := sumHMAC(inner, outer, s.prk[:0])
	s.keyHMAC(inner, outer, prk)
	commitInner, commitOuter := cloneHash(inner), cloneHash(outer)
	if commitInner == nil || commitOuter == nil {
		commitInner, commitOuter = sha512.New(), sha512.New()
		s.keyHMAC(commitInner, commitOuter, prk)
	}
	copy(s.info[copy(s.info[:], sid[:]):], "DERIVEKEY\x01")
	inner.Write(s.info[:])
	key = sumHMAC(inner, outer, s.key[:0])[:32]
	commitInner.Write(commitKeyInfo)
	commit = sumHMAC(commitInner, commitOuter, s.commit[:0])[:commitKeyLen]
	return key, commit
}

// standardCommitted is expandCommitted through crypto/hkdf, for a program
// in FIPS 140-3 mode (GODEBUG=fips140=on): there the derivation must stay
// inside Go's validated module, which a hand-written HMAC leaves.
func standardCommitted(dataKey, messageID []byte, sid [2]byte) (key, commit []byte, err error) {
	prk, err := hkdf.Extract(sha512.New, dataKey, messageID)
	if err != nil {
		return nil, nil, err
	}
	defer clear(prk)
	if key, err = hkdf.Expand(sha512.New, prk, string(sid[:])+"DERIVEKEY", 32); err != nil {
		return nil, nil, err
	}
	commit, err = hkdf.Expand(sha512.New, prk, "COMMITKEY", commitKeyLen)
	return key, commit, err
}

// kdfScratch holds expandCommitted's buffers in one allocation: a slice
// passed to a hash.Hash method escapes, so stack arrays would each be
// allocated anyway.
type kdfScratch struct {
	pad         [sha512.BlockSize]byte
	info        [2 + len("DERIVEKEY\x01")]byte // suite ID ‖ label ‖ counter
	prk         [sha512.Size]byte
	key, commit [sha512.Size]byte
}

// clearSecrets clears all but the returned key and commit key, and the
// key's unused half.
func (s *kdfScratch) clearSecrets() {
	clear(s.pad[:])
	clear(s.prk[:])
	clear(s.key[32:])
}

// keyHMAC resets inner and outer to the SHA-512 states after the blocks
// key ⊕ ipad and key ⊕ opad. key is at most one block long (the message
// ID or PRK), so it is used as is.
func (s *kdfScratch) keyHMAC(inner, outer hash.Hash, key []byte) {
	if len(key) > len(s.pad) {
		panic("envelope: HMAC key longer than a SHA-512 block") // unreachable: IDs are 32 bytes
	}
	clear(s.pad[copy(s.pad[:], key):])
	subtle.XORBytes(s.pad[:], s.pad[:], ipad[:])
	inner.Reset()
	inner.Write(s.pad[:])
	subtle.XORBytes(s.pad[:], s.pad[:], ipadToOpad[:])
	outer.Reset()
	outer.Write(s.pad[:])
}

// ipad is RFC 2104's inner padding; ipadToOpad turns key ⊕ ipad into key
// ⊕ opad. XORed a word at a time by crypto/subtle, not byte by byte.
var ipad, ipadToOpad = padOf(0x36), padOf(0x36 ^ 0x5c)

func padOf(b byte) (p [sha512.BlockSize]byte) {
	for i := range p {
		p[i] = b
	}
	return p
}

// sumHMAC appends HMAC = H(key ⊕ opad ‖ H(key ⊕ ipad ‖ message)) to dst,
// which has room for it, given inner and outer as keyHMAC left them and
// the message written to inner.
func sumHMAC(inner, outer hash.Hash, dst []byte) []byte {
	in := inner.Sum(dst)
	outer.Write(in)
	return outer.Sum(dst)
}

// commitKeyInfo is the commit key's HKDF info with T(1)'s counter byte. A
// package variable, since a []byte conversion passed to a hash.Hash
// allocates on every call.
var commitKeyInfo = []byte("COMMITKEY\x01")

// cloneHash returns a copy of h's state, or nil should the hash ever not
// support cloning (the caller then recomputes the state).
func cloneHash(h hash.Hash) hash.Hash {
	if c, ok := h.(hash.Cloner); ok {
		if d, err := c.Clone(); err == nil {
			return d
		}
	}
	return nil
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
