package envelope

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
)

// p384FixedSigLen is the DER signature length the official SDKs retry for,
// so that signed messages have a predictable size.
const p384FixedSigLen = 103

// signer hashes header ‖ body as it is written and signs at the end
// (data-format/message-footer.md).
type signer struct {
	priv *ecdsa.PrivateKey
	h    hash.Hash
}

// newSigner generates a fresh P-384 key pair and returns it with the
// encryption-context value for its public key: base64 of the SEC1
// compressed point.
func newSigner() (*signer, string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	pub, err := priv.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, "", err
	}
	n := (len(pub) - 1) / 2
	comp := make([]byte, 1+n)
	comp[0] = 0x02 | pub[len(pub)-1]&1
	copy(comp[1:], pub[1:1+n])
	return &signer{priv: priv, h: sha512.New384()}, base64.StdEncoding.EncodeToString(comp), nil
}

// footer returns sigLen u16 ‖ DER signature, retrying until the signature
// has the fixed length so message sizes are predictable.
func (s *signer) footer() ([]byte, error) {
	digest := s.h.Sum(nil)
	for {
		sig, err := ecdsa.SignASN1(rand.Reader, s.priv, digest)
		if err != nil {
			return nil, err
		}
		if len(sig) == p384FixedSigLen {
			return append([]byte{0, byte(len(sig))}, sig...), nil
		}
	}
}

// newVerifier parses the signature key a signed message carries in its
// encryption context and returns it with the suite's hash.
func newVerifier(s Suite, ec map[string]string) (*ecdsa.PublicKey, hash.Hash, error) {
	curve, h := elliptic.P384(), sha512.New384()
	if s == suiteLegacyAES128GCMHKDFSHA256P256 {
		curve, h = elliptic.P256(), sha256.New()
	}
	comp, err := base64.StdEncoding.DecodeString(ec[PublicKeyContextKey])
	if err != nil {
		return nil, nil, malformed("encryption context", "%s is not base64", PublicKeyContextKey)
	}
	x, y := elliptic.UnmarshalCompressed(curve, comp)
	if x == nil {
		return nil, nil, malformed("encryption context", "%s is not a compressed %s point", PublicKeyContextKey, curve.Params().Name)
	}
	size := (curve.Params().BitSize + 7) / 8
	raw := make([]byte, 1+2*size)
	raw[0] = 4
	x.FillBytes(raw[1 : 1+size])
	y.FillBytes(raw[1+size:])
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signature key: %v", ErrMalformed, err)
	}
	return pub, h, nil
}
