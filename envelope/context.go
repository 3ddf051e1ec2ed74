package envelope

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
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
	size := 2
	for k, v := range ec {
		size += 4 + len(k) + len(v)
	}
	return appendContext(make([]byte, 0, size), ec)
}

// appendContext appends SerializeContext(ec) to dst, with the same checks,
// made as each pair is written.
func appendContext(dst []byte, ec map[string]string) ([]byte, error) {
	if len(ec) == 0 {
		return dst, nil
	}
	if len(ec) > math.MaxUint16 {
		return nil, fmt.Errorf("%w: %d pairs, at most %d", ErrInvalidContext, len(ec), math.MaxUint16)
	}
	// Pairs, not keys, are sorted, sparing a map lookup per key; a small
	// context's stay on the stack.
	var small [8]contextPair
	pairs := small[:0]
	for k, v := range ec {
		pairs = append(pairs, contextPair{k, v})
	}
	// Go compares strings bytewise: UTF-8 byte order, as the spec requires.
	slices.SortFunc(pairs, func(a, b contextPair) int { return strings.Compare(a.k, b.k) })
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ec)))
	for _, p := range pairs {
		if err := checkContextField("key", p.k); err != nil {
			return nil, err
		}
		if err := checkContextField("value", p.v); err != nil {
			return nil, err
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.k)))
		dst = append(dst, p.k...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.v)))
		dst = append(dst, p.v...)
	}
	return dst, nil
}

type contextPair struct{ k, v string }

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
