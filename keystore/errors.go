package keystore

import (
	"errors"
	"fmt"

	"github.com/keystack/keystack/keyring"
)

// Errors of the local key store (Init, Open and the Store methods).
var (
	// ErrExists is returned by Init when the directory already holds a store.
	ErrExists = errors.New("keystore: key store already initialized")
	// ErrNotInitialized is returned by Open when the directory holds no store.
	ErrNotInitialized = errors.New("keystore: key store not initialized")
	// ErrKeyNotFound is returned for a key name the store does not hold.
	ErrKeyNotFound = errors.New("keystore: key not found")
	// ErrKeyExists is returned when creating or importing a name already in use.
	ErrKeyExists = errors.New("keystore: key already exists")
	// ErrInvalidName is returned for a key name that is not
	// [A-Za-z0-9][A-Za-z0-9._-]{0,127}.
	ErrInvalidName = errors.New("keystore: invalid key name")
	// ErrBadPassphrase is the opaque error for a passphrase that does not
	// unlock the store (or an empty one where a passphrase is required).
	ErrBadPassphrase = errors.New("keystore: wrong passphrase")
	// ErrLocked is returned when sealed key material is needed and the store
	// was opened without a passphrase source.
	ErrLocked = errors.New("keystore: key store is locked: a passphrase is needed")
	// ErrBackendUnavailable is returned for a key held by a backend that is
	// unknown or not registered in OpenOptions.Backends.
	ErrBackendUnavailable = errors.New("keystore: key backend unavailable")
	// ErrCorruptStore is returned when the store's files are malformed,
	// oversized or were tampered with.
	ErrCorruptStore = errors.New("keystore: key store file corrupt")
	// errResealed: keystore.json's material is sealed under another key
	// than the one this process unlocked (a passphrase or seal change, or a
	// new init by another process), and this process could not unlock it
	// again (see OpenOptions.RereadPassphrase).
	errResealed = fmt.Errorf("%w: it was resealed under another passphrase or seal since this process unlocked it "+
		"(passphrase change, seal change or init elsewhere): update this process's passphrase file, or restart it "+
		"with the current passphrase", ErrCorruptStore)
	// ErrInvalidOptions is returned for contradictory or unknown options.
	ErrInvalidOptions = errors.New("keystore: invalid options")
	// ErrKeyDisabled is returned when a key's primary version cannot encrypt,
	// or none of its versions can decrypt.
	ErrKeyDisabled = errors.New("keystore: key version not usable")
	// ErrNotSupported is returned for an operation the key's kind does not
	// allow, such as rotating an imported RSA key. It is keyring's sentinel,
	// so errors.Is matches either name.
	ErrNotSupported = keyring.ErrNotSupported
)
