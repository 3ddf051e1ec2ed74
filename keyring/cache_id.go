package keyring

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"math"
	"slices"
	"sync"

	"github.com/keystack/keystack/envelope"
)

// encryptID computes the ESDK encrypt cache entry identifier "with algorithm
// suite" (caching-cmm.md, Appendix A):
//
//	SHA512(SHA512(partition) ‖ 0x01 ‖ suite ID ‖ SHA512(serialized context))
//
// ok is false when m must bypass the cache (see OnEncrypt).
func (c *Caching) encryptID(m *envelope.EncryptionMaterials) (id cacheID, ok bool) {
	switch {
	case m.DataKey != nil, m.Suite.Signed(), !hasKDF(m.Suite):
		return id, false
	case m.PlaintextLength < 0 && c.bytesLimited:
		return id, false // unknown length: the byte limit could not be enforced
	case m.PlaintextLength > 0 && uint64(m.PlaintextLength) > c.maxBytes:
		return id, false
	}
	ec, err := c.serialContext(m.EncryptionContext)
	if err != nil {
		return id, false // the inner keyring reports the invalid context
	}
	if id, ok := c.memo.get(m.Suite, ec); ok {
		return id, true
	}
	id = c.computeEncryptID(m.Suite, ec)
	c.memo.put(m.Suite, ec, id)
	return id, true
}

func (c *Caching) computeEncryptID(suite envelope.Suite, ec []byte) cacheID {
	var pre [2*sha512.Size + 3]byte // fixed size: built on the stack, hashed in one call
	copy(pre[:], c.partition[:])
	pre[sha512.Size] = 0x01
	binary.BigEndian.PutUint16(pre[sha512.Size+1:], uint16(suite))
	ecHash := sha512.Sum512(ec)
	copy(pre[sha512.Size+3:], ecHash[:])
	return sha512.Sum512(pre[:])
}

const (
	idMemoMaxEntries = 256  // inputs remembered; a memo is emptied when full
	idMemoMaxKey     = 4096 // longer inputs are hashed every time
)

// idMemo maps the exact inputs of an entry ID (a serialized context, or a
// context and EDK set) to the ID, so that a cache hit costs a map lookup
// instead of several SHA-512 blocks. Its size is bounded by
// idMemoMaxEntries × idMemoMaxKey bytes. The zero value is empty.
type idMemo struct {
	mu sync.RWMutex
	m  map[string]memoID
}

type memoID struct {
	suite envelope.Suite
	id    cacheID
}

func (memo *idMemo) get(suite envelope.Suite, key []byte) (cacheID, bool) {
	memo.mu.RLock()
	v, ok := memo.m[string(key)] // no allocation: the conversion is only a lookup key
	memo.mu.RUnlock()
	return v.id, ok && v.suite == suite
}

func (memo *idMemo) put(suite envelope.Suite, key []byte, id cacheID) {
	if len(key) > idMemoMaxKey {
		return
	}
	memo.mu.Lock()
	defer memo.mu.Unlock()
	if memo.m == nil || len(memo.m) >= idMemoMaxEntries {
		memo.m = make(map[string]memoID, idMemoMaxEntries)
	}
	memo.m[string(key)] = memoID{suite, id}
}

// decryptID computes the ESDK decrypt cache entry identifier
// (caching-cmm.md, Appendix A):
//
//	SHA512(SHA512(partition) ‖ suite ID ‖ sorted SHA512(EDK entry)… ‖ 64 zero bytes ‖ SHA512(serialized context))
//
// with each EDK serialized as in the message header. ok is false when the
// request must bypass the cache.
func (c *Caching) decryptID(m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) (id cacheID, ok bool) {
	if !hasKDF(m.Suite) || len(edks) == 0 {
		return id, false
	}
	ec, err := c.serialContext(m.EncryptionContext)
	if err != nil {
		return id, false
	}
	// The memo key is len(ec) ‖ ec ‖ each EDK entry: unambiguous, since
	// every part is length-prefixed.
	var stack [512]byte
	key := binary.BigEndian.AppendUint32(stack[:0], uint32(len(ec)))
	key = append(key, ec...)
	for _, e := range edks {
		if key, ok = appendEDK(key, e); !ok {
			return id, false // cannot be a header's EDK; let the inner keyring judge it
		}
	}
	if id, ok := c.decMemo.get(m.Suite, key); ok {
		return id, true
	}
	id = c.computeDecryptID(m.Suite, ec, edks)
	c.decMemo.put(m.Suite, key, id)
	return id, true
}

// computeDecryptID hashes as decryptID says; every EDK field fits a u16.
func (c *Caching) computeDecryptID(suite envelope.Suite, ec []byte, edks []envelope.EncryptedDataKey) cacheID {
	hashes := make([][sha512.Size]byte, len(edks))
	var entry []byte
	for i, e := range edks {
		entry, _ = appendEDK(entry[:0], e)
		hashes[i] = sha512.Sum512(entry)
	}
	slices.SortFunc(hashes, func(a, b [sha512.Size]byte) int { return bytes.Compare(a[:], b[:]) })
	ecHash := sha512.Sum512(ec)
	h := sha512.New()
	h.Write(c.partition[:])
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(suite)))
	for i := range hashes {
		h.Write(hashes[i][:])
	}
	h.Write(make([]byte, sha512.Size)) // sentinel ending the key hashes
	h.Write(ecHash[:])
	return cacheID(h.Sum(nil))
}

// appendEDK appends e serialized as a header entry (data-format/
// message-header.md): three u16-length-prefixed fields. ok is false when a
// field is too long for that.
func appendEDK(b []byte, e envelope.EncryptedDataKey) ([]byte, bool) {
	if len(e.ProviderID) > math.MaxUint16 || len(e.ProviderInfo) > math.MaxUint16 || len(e.Ciphertext) > math.MaxUint16 {
		return b, false
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.ProviderID)))
	b = append(b, e.ProviderID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.ProviderInfo)))
	b = append(b, e.ProviderInfo...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Ciphertext)))
	b = append(b, e.Ciphertext...)
	return b, true
}
