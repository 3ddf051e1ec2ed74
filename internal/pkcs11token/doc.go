// Package pkcs11token is the PKCS#11 machinery under package hsm (whose
// Backend is the public face of this package's) and the CLI's `keystack
// hsm` commands: modules, tokens and their login, the session pool, key
// objects (generate, find, list, destroy), RFC 7512 URIs, PIN sources and
// the keyrings over token keys.
//
// # Configuration
//
// A token and key are named by an RFC 7512 PKCS#11 URI, parsed by
// [ParseURI]. The PIN comes from the URI's pin-source file, the
// KEYSTACK_PKCS11_PIN environment variable, or a caller's [PINPrompt]; it
// never comes from a URI (pin-value is rejected), argv or a log.
//
// # Keys
//
//   - AES-256 keys ([Token.GenerateAESKey], [Token.AESKeyring]) wrap data
//     keys with CKM_AES_GCM, writing the ESDK raw AES keyring's EDK layout.
//   - RSA-3072/4096 key pairs ([Token.GenerateRSAKeyPair],
//     [Token.RSAKeyring]) wrap with RSA-OAEP-SHA256 in Go and unwrap with
//     CKM_RSA_PKCS_OAEP on the token, writing the ESDK raw RSA keyring's
//     EDK layout; the public key exports as PEM for HSM-less encryption.
//   - Version N of key NAME is the object labeled "NAME/vN" ([versionLabel]);
//     [Token.Keyring] encrypts with the primary version and decrypts with all.
//
// Keys are generated non-extractable and sensitive: key values never leave
// the token, and [Token.ListObjects] reads only labels, IDs, types and sizes.
//
// # Sessions
//
// A module is loaded and C_Initialize'd once per process and a token logged
// in once, shared by every [Token] on it and reference counted; the last
// Close logs out and calls C_Finalize. Each operation borrows a session
// from a bounded pool. When sessions or the login are lost (closed behind
// our back, token removed), the pool drops its sessions, forgets object
// handles, logs in again and retries the operation once. A PIN the token
// rejects is never tried again, so keystack cannot lock a token by retrying.
package pkcs11token
