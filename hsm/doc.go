// Package hsm keeps keystack master keys in a PKCS#11 token (an HSM, or
// SoftHSM2 for development) and implements envelope.Keyring with them,
// as a keystore backend ([Backend], key "pkcs11" of keystore.Open's
// Backends map) or on its own.
//
// # Configuration
//
// A token and key are named by an RFC 7512 PKCS#11 URI, e.g.
//
//	pkcs11:token=prod;object=payments%2Fv2;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keystack/pin
//
// Path attributes token, serial and slot-id select the token; object, id
// and type (secret-key, private or public) select the key. Query attributes
// module-path and pin-source name the PKCS#11 library and where the PIN is
// read from. Vendor attributes ("x-...") are ignored; any other unknown or
// repeated attribute is refused with [ErrInvalidURI], so that a typo cannot
// select a different token or key.
//
// The PIN comes from the URI's pin-source file, the KEYSTACK_PKCS11_PIN
// environment variable, or [Options].Prompt, in that order; it never comes
// from a URI ("pin-value" is refused: URIs end up in configuration files,
// argv and logs) and never appears in an error. A PIN the token rejects
// ([ErrPINIncorrect]) is never tried again, so keystack cannot lock a
// token by retrying.
//
// # Keys
//
//   - AES-256 keys wrap data keys with CKM_AES_GCM, writing the ESDK raw
//     AES keyring's EDK layout (framework/raw-aes-keyring.md), so
//     keyring.NewRawAES decrypts them given the key value.
//   - RSA-3072/4096 key pairs wrap with RSA-OAEP-SHA256 in Go and unwrap
//     with CKM_RSA_PKCS_OAEP on the token, writing the ESDK raw RSA
//     keyring's EDK layout, so keyring.NewRawRSA with the public key
//     encrypts for them without the HSM.
//   - Version N of key NAME is the object labeled "NAME/vN"
//     ([Backend.GenerateVersion]); that label is the key name written in
//     the EDKs.
//
// Keys are generated non-extractable and sensitive: key values never leave
// the token. `keystack hsm keygen`, `list` and `export-public` administer
// a token's keys.
//
// # Sessions
//
// A module is loaded and C_Initialize'd once per process and a token logged
// in once, shared by every Backend and reference counted; the last Close
// logs out and calls C_Finalize. Each operation borrows a session from a
// bounded pool ([Options].PoolSize). When sessions or the login are lost
// (closed behind our back, token removed), the pool drops its sessions,
// forgets object handles, logs in again and retries the operation once.
package hsm
