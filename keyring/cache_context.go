package keyring

import (
	"encoding/binary"

	"github.com/keystack/keystack/envelope"
)

// serialContext returns envelope.SerializeContext(ec), reusing the last
// serialization when ec holds exactly the same pairs. Callers of a cache
// nearly always repeat one context, and serializing it (map iteration, sort,
// UTF-8 checks, an allocation) was the largest cost of a cache hit; checking
// that ec matches the remembered pairs costs one map lookup per pair. The
// returned bytes are shared: callers must not modify them.
func (c *Caching) serialContext(ec map[string]string) ([]byte, error) {
	if len(ec) == 0 {
		return nil, nil
	}
	if last := c.lastEC.Load(); last != nil && sameContext(*last, ec) {
		return *last, nil
	}
	ser, err := envelope.SerializeContext(ec)
	if err == nil {
		c.lastEC.Store(&ser)
	}
	return ser, err
}

// sameContext reports whether ser, a valid serialized context, holds exactly
// the pairs of ec: as many pairs, each key present in ec with the same
// value. Keys in ser are distinct, so this is equality of the two sets.
func sameContext(ser []byte, ec map[string]string) bool {
	if len(ser) < 2 || int(binary.BigEndian.Uint16(ser)) != len(ec) {
		return false
	}
	field := func() []byte { // ser is well formed: no bounds to check
		n := int(binary.BigEndian.Uint16(ser))
		f := ser[2 : 2+n]
		ser = ser[2+n:]
		return f
	}
	for ser = ser[2:]; len(ser) > 0; {
		k, v := field(), field()
		// Converting in the lookup and the comparison allocates nothing.
		if got, ok := ec[string(k)]; !ok || got != string(v) {
			return false
		}
	}
	return true
}
