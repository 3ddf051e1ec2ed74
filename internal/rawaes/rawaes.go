// Package rawaes is the EDK layout of the ESDK raw AES keyring
// (framework/raw-aes-keyring.md), which keyring.NewRawAES's keyring and
// the PKCS#11 AES keyring (internal/pkcs11token) both write and read:
// AES-GCM with a 12-byte IV and a 128-bit tag; provider info = key name ‖
// tag bits u32 ‖ IV length u32 ‖ IV; ciphertext = wrapped data key ‖ tag.
package rawaes

import (
	"encoding/binary"

	"github.com/keystack/keystack/envelope"
)

// The AES-GCM parameters of the layout.
const (
	TagBits = 128
	TagLen  = TagBits / 8
	IVLen   = 12
)

// infoSuffix is tag bits u32 ‖ IV length u32 ‖ IV.
const infoSuffix = 4 + 4 + IVLen

// ProviderInfo returns the provider info of an EDK wrapped under keyName
// with iv: keyName ‖ tag bits u32 (128) ‖ IV length u32 (12) ‖ IV.
func ProviderInfo(keyName string, iv []byte) []byte {
	info := make([]byte, 0, len(keyName)+infoSuffix)
	info = append(info, keyName...)
	info = binary.BigEndian.AppendUint32(info, TagBits)
	info = binary.BigEndian.AppendUint32(info, IVLen)
	return append(info, iv...)
}

// SplitInfo parses provider info of this layout into the key name and
// the IV; ok is false for anything else (another tag or IV length
// included).
func SplitInfo(info []byte) (keyName string, iv []byte, ok bool) {
	if len(info) <= infoSuffix {
		return "", nil, false
	}
	rest := info[len(info)-infoSuffix:]
	if binary.BigEndian.Uint32(rest) != TagBits || binary.BigEndian.Uint32(rest[4:]) != IVLen {
		return "", nil, false
	}
	return string(info[:len(info)-infoSuffix]), rest[8:], true
}

// Match reports whether edk is an EDK of this layout for the key keyName
// in namespace (its provider ID), and returns its IV.
func Match(edk envelope.EncryptedDataKey, namespace, keyName string) ([]byte, bool) {
	if edk.ProviderID != namespace {
		return nil, false
	}
	name, iv, ok := SplitInfo(edk.ProviderInfo)
	if !ok || name != keyName {
		return nil, false
	}
	return iv, true
}
