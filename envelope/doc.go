// Package envelope reads and writes AWS Encryption SDK (ESDK) messages,
// byte for byte compatible with the official SDKs.
//
// # Messages
//
// [Encrypt] and [EncryptBytes] write message format version 2 with suite
// [SuiteCommitted] (AES-256-GCM, HKDF-SHA512, key commitment; the default)
// or [SuiteCommittedSigned] (the same plus an ECDSA P-384 signature
// footer). [Decrypt] and [DecryptBytes] read version 2 always, and the
// non-committing version 1 suites only with [DecryptOptions].AllowLegacy.
// [Inspect] parses a header without any key. The wire grammar, limits and
// choices are in SPEC.md next to this file.
//
// The format follows the public aws-encryption-sdk-specification:
// data-format/message.md, message-header.md, message-body.md,
// message-body-aad.md and message-footer.md for the bytes;
// framework/algorithm-suites.md for key derivation and commitment;
// framework/structures.md for the encryption-context serialization;
// client-apis/encrypt.md and client-apis/decrypt.md for the order of
// checks; framework/required-encryption-context-cmm.md for required
// context keys.
//
// # Keys
//
// Master keys live behind the [Keyring] interface: the caller's keyring
// generates and wraps the data key on encrypt, and unwraps one encrypted
// data key on decrypt. This package imports no key backend; raw AES/RSA,
// AWS KMS and PKCS#11 keyrings live in other packages.
//
// # Streaming and security
//
// Frames are sealed and opened in parallel ([EncryptOptions].Concurrency,
// default GOMAXPROCS) through an ordered pipeline that holds a few frames,
// so memory stays bounded whatever the message size. The decrypting
// [Reader] never releases a frame's plaintext before its tag verifies, and
// for signed messages holds the final frame until the signature verifies.
// Truncation, reordered or duplicated frames and trailing bytes are
// errors, and errors are sticky. Every tag, commitment or signature
// failure is the single opaque [ErrAuthentication]; malformed input gives
// [ErrMalformed] (a [*ParseError] naming the field). Untrusted lengths are
// checked before allocating: a header declaring frames longer than
// [DecryptOptions].MaxFrameLength ([DefaultMaxFrameLength], 4 MiB) is
// [ErrFrameTooLarge] before any keyring runs, so a hostile message cannot
// make a reader hold more than a few such frames. No error text contains
// key material or plaintext.
//
// # Rotation
//
// [RewrapHeader] re-encrypts the data key of a message whose header
// [Inspect] read for a new keyring and returns a new header that can be
// prepended to the unchanged body.
// [RewrapSigned] does the same for signed messages in one streaming pass,
// re-signing the unchanged body with a fresh key pair.
package envelope
