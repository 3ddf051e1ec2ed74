package kmstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
)

// material is a key's backing keys. Multi-Region replicas share one, so a
// rotation of the primary is seen by every replica, as in KMS.
type material struct {
	versions  [][]byte // AES-256 keys; the last one encrypts
	rotations []rotation
}

type rotation struct {
	date     time.Time
	onDemand bool
}

type key struct {
	id, arn, region string
	description     string
	created         time.Time
	state           string // "Enabled", "Disabled", "PendingDeletion"
	multiRegion     bool
	rotationDays    int // 0 when automatic rotation is off
	mat             *material
}

func newMaterial() *material {
	return &material{versions: [][]byte{randomBytes(32)}}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("kmstest: crypto/rand failed: " + err.Error())
	}
	return b
}

func (s *Server) keyARN(region, id string) string {
	return fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", s.partition, region, s.accountID, id)
}

// resolve finds the key named by a key ID, key ARN, alias name or alias ARN
// in the call's Region. The caller holds s.mu.
func (s *Server) resolve(c *call, ref string) (*key, error) {
	if ref == "" {
		return nil, errf("ValidationException", "KeyId is required")
	}
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		f := strings.SplitN(ref, ":", 6)
		if len(f) != 6 || f[2] != "kms" {
			return nil, errf("ValidationException", "invalid key ARN %q", ref)
		}
		if f[1] != s.partition || f[3] != c.region || f[4] != s.accountID {
			return nil, errf("NotFoundException", "Key '%s' does not exist", ref)
		}
		name = f[5]
		if id, ok := strings.CutPrefix(name, "key/"); ok {
			name = id
		}
	}
	if strings.HasPrefix(name, "alias/") {
		id, ok := s.aliases[c.region+"/"+name]
		if !ok {
			return nil, errf("NotFoundException", "Alias %s is not found.", ref)
		}
		name = id
	}
	k, ok := s.keys[c.region+"/"+name]
	if !ok {
		return nil, errf("NotFoundException", "Key '%s' does not exist", ref)
	}
	return k, nil
}

// usableKey resolves ref and fails unless the key is usable.
func (s *Server) usableKey(c *call, ref string) (*key, error) {
	k, err := s.resolve(c, ref)
	if err != nil {
		return nil, err
	}
	return k, s.usable(k)
}

// usable reports why k cannot be used for a cryptographic operation.
func (s *Server) usable(k *key) error {
	if s.denied[k.arn] {
		return errf("AccessDeniedException", "User is not authorized to use key %s", k.arn)
	}
	switch k.state {
	case "Enabled":
		return nil
	case "Disabled":
		return errf("DisabledException", "%s is disabled.", k.arn)
	default:
		return errf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
	}
}

// Ciphertext blob layout (all integers big-endian):
//
//	version(1)=1 ‖ idLen(1) ‖ key ID ‖ backing version u32 ‖ IV(12) ‖ AES-256-GCM(sealed ‖ tag)
//
// The AAD is everything before the IV followed by the canonical encryption
// context, so both the key binding and the context are authenticated.
const (
	blobVersion = 1
	maxBlobLen  = 6144 // the KMS CiphertextBlob limit
	gcmIVLen    = 12
	gcmTagLen   = 16
)

func seal(k *key, plaintext []byte, ec map[string]string) []byte {
	ver := len(k.mat.versions) - 1
	hdr := []byte{blobVersion, byte(len(k.id))}
	hdr = append(hdr, k.id...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(ver))
	iv := randomBytes(gcmIVLen)
	out := append(slices.Clone(hdr), iv...)
	return gcmFor(k.mat.versions[ver]).Seal(out, iv, plaintext, append(hdr, canonicalContext(ec)...))
}

// parsedBlob is a ciphertext blob split into its fields.
type parsedBlob struct {
	keyID   string
	version uint32
	hdr, iv []byte
	sealed  []byte
}

func parseBlob(b []byte) (*parsedBlob, error) {
	bad := errf("InvalidCiphertextException", "The ciphertext is invalid.")
	if len(b) > maxBlobLen {
		return nil, errf("ValidationException", "CiphertextBlob exceeds %d bytes", maxBlobLen)
	}
	if len(b) < 2 || b[0] != blobVersion {
		return nil, bad
	}
	n := int(b[1])
	if len(b) < 2+n+4+gcmIVLen+gcmTagLen {
		return nil, bad
	}
	hdrLen := 2 + n + 4
	return &parsedBlob{
		keyID:   string(b[2 : 2+n]),
		version: binary.BigEndian.Uint32(b[2+n:]),
		hdr:     b[:hdrLen],
		iv:      b[hdrLen : hdrLen+gcmIVLen],
		sealed:  b[hdrLen+gcmIVLen:],
	}, nil
}

func open(k *key, p *parsedBlob, ec map[string]string) ([]byte, error) {
	if int64(p.version) >= int64(len(k.mat.versions)) {
		return nil, errf("InvalidCiphertextException", "The ciphertext is invalid.")
	}
	aad := append(slices.Clone(p.hdr), canonicalContext(ec)...)
	pt, err := gcmFor(k.mat.versions[p.version]).Open(nil, p.iv, p.sealed, aad)
	if err != nil {
		return nil, errf("InvalidCiphertextException", "The ciphertext is invalid or the encryption context does not match.")
	}
	return pt, nil
}

func gcmFor(k []byte) cipher.AEAD {
	b, err := aes.NewCipher(k)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

// canonicalContext serializes a context unambiguously: pairs sorted by key,
// each field prefixed by its u32 length.
func canonicalContext(ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []byte
	for _, k := range keys {
		out = binary.BigEndian.AppendUint32(out, uint32(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(ec[k])))
		out = append(out, ec[k]...)
	}
	return out
}
