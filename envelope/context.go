package envelope

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"
)

// PublicKeyContextKey is the encryption-context key the ESDK reserves for a
// signed message's verification key. Callers may not set it.
const PublicKeyContextKey = "aws-crypto-public-key"

// SerializeContext returns the ESDK serialization of an encryption context
// (framework/structures.md#serialization): empty for an empty context,
// otherwise count u16 followed by keyLen u16 ‖ key ‖ valueLen u16 ‖ value for
// each pair, sorted by the keys' UTF-8 bytes. Raw AES keyrings use it as AAD.
// It fails with ErrInvalidContext when a key or value is not valid UTF-8 or
// a field does not fit its u16 length.
func SerializeContext(ec map[string]string) ([]byte, error) {
	if len(ec) == 0 {
		return nil, nil
	}
	if err := checkContext(ec); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(ec))
	size := 2
	for k, v := range ec {
		keys = append(keys, k)
		size += 4 + len(k) + len(v)
	}
	sort.Strings(keys) // Go compares strings bytewise: UTF-8 byte order, as the spec requires.
	out := make([]byte, 0, size)
	out = binary.BigEndian.AppendUint16(out, uint16(len(ec)))
	for _, k := range keys {
		out = binary.BigEndian.AppendUint16(out, uint16(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(ec[k])))
		out = append(out, ec[k]...)
	}
	return out, nil
}

// checkContext is SerializeContext's validation without the serializing.
func checkContext(ec map[string]string) error {
	if len(ec) > math.MaxUint16 {
		return fmt.Errorf("%w: %d pairs, at most %d", ErrInvalidContext, len(ec), math.MaxUint16)
	}
	for k, v := range ec {
		if err := checkContextField("key", k); err != nil {
			return err
		}
		if err := checkContextField("value", v); err != nil {
			return err
		}
	}
	return nil
}

func checkContextField(what, s string) error {
	if len(s) > math.MaxUint16 {
		return fmt.Errorf("%w: %s of %d bytes, at most %d", ErrInvalidContext, what, len(s), math.MaxUint16)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidContext, what)
	}
	return nil
}
