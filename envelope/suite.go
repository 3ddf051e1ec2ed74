package envelope

import "fmt"

// Suite is an AWS Encryption SDK algorithm suite ID
// (aws-encryption-sdk-specification, framework/algorithm-suites.md).
type Suite uint16

const (
	// SuiteCommitted is AES-256-GCM with HKDF-SHA512 key derivation and key
	// commitment, message format v2. It is the default.
	SuiteCommitted Suite = 0x0478
	// SuiteCommittedSigned is SuiteCommitted plus an ECDSA P-384 signature
	// over the whole message.
	SuiteCommittedSigned Suite = 0x0578

	// Legacy message format v1 suites. They do not commit to the data key and
	// are read only when DecryptOptions.AllowLegacy is set; they are never
	// written, so they have no exported names: a Header shows them as their
	// ESDK names (Suite.String) and Suite.Committing is false.
	suiteLegacyAES128GCM               Suite = 0x0014
	suiteLegacyAES192GCM               Suite = 0x0046
	suiteLegacyAES256GCM               Suite = 0x0078
	suiteLegacyAES128GCMHKDFSHA256     Suite = 0x0114
	suiteLegacyAES192GCMHKDFSHA256     Suite = 0x0146
	suiteLegacyAES256GCMHKDFSHA256     Suite = 0x0178
	suiteLegacyAES128GCMHKDFSHA256P256 Suite = 0x0214
	suiteLegacyAES192GCMHKDFSHA384P384 Suite = 0x0346
	suiteLegacyAES256GCMHKDFSHA384P384 Suite = 0x0378
)

var suiteNames = map[Suite]string{
	SuiteCommitted:                     "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
	SuiteCommittedSigned:               "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
	suiteLegacyAES128GCM:               "AES_128_GCM_IV12_TAG16_NO_KDF",
	suiteLegacyAES192GCM:               "AES_192_GCM_IV12_TAG16_NO_KDF",
	suiteLegacyAES256GCM:               "AES_256_GCM_IV12_TAG16_NO_KDF",
	suiteLegacyAES128GCMHKDFSHA256:     "AES_128_GCM_IV12_TAG16_HKDF_SHA256",
	suiteLegacyAES192GCMHKDFSHA256:     "AES_192_GCM_IV12_TAG16_HKDF_SHA256",
	suiteLegacyAES256GCMHKDFSHA256:     "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
	suiteLegacyAES128GCMHKDFSHA256P256: "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256",
	suiteLegacyAES192GCMHKDFSHA384P384: "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
	suiteLegacyAES256GCMHKDFSHA384P384: "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
}

// String returns the ESDK name of the suite, or its hex ID when unknown.
func (s Suite) String() string {
	if n, ok := suiteNames[s]; ok {
		return n
	}
	return fmt.Sprintf("0x%04X", uint16(s))
}

// Known reports whether s is one of the eleven ESDK message suites.
func (s Suite) Known() bool { _, ok := suiteNames[s]; return ok }

// Committing reports whether s commits to its data key (message format v2).
func (s Suite) Committing() bool { return s == SuiteCommitted || s == SuiteCommittedSigned }

// Signed reports whether messages of suite s carry an ECDSA signature footer.
func (s Suite) Signed() bool { return s>>8 == 0x02 || s>>8 == 0x03 || s == SuiteCommittedSigned }

// DataKeyLen is the length in bytes of the data key a keyring must produce
// for suite s: 16, 24 or 32. It is 0 for an unknown suite.
func (s Suite) DataKeyLen() int {
	if !s.Known() {
		return 0
	}
	switch s & 0xFF {
	case 0x14:
		return 16
	case 0x46:
		return 24
	default:
		return 32
	}
}
