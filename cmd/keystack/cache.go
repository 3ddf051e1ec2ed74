package main

// This file assembles the keyrings of encrypt and decrypt from the
// keystore, the KMS discovery keyring and the data-key cache.

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// cacheFlags configure the data-key cache (ESDK framework/caching-cmm.md).
// It pays off with --recursive over many files: one KMS or HSM call then
// serves many messages.
func cacheFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "cache-max-age", Usage: "cache data keys for `D` (e.g. 5m); enables the cache"},
		&cli.Uint64Flag{Name: "cache-max-messages", Usage: "with --cache-max-age, encrypt at most `N` messages per data key (default 2^32)"},
		&cli.Uint64Flag{Name: "cache-max-bytes", Usage: "with --cache-max-age, encrypt at most `N` plaintext bytes per data key; streams of unknown length bypass the cache"},
	}
}

// encryptFlags and decryptFlags are the backend and cache flags that
// encrypt and decrypt add to cryptFlags.
func encryptFlags() []cli.Flag { return append(kmsFlags(), cacheFlags()...) }

func decryptFlags() []cli.Flag {
	return append(append(kmsFlags(), discoveryFlags()...), cacheFlags()...)
}

// encryptKeyring returns the keyring that wraps each message's data key
// under every key spec. With --cache-max-age the store caches data keys per
// key version behind its policy check (see storeCache), so every message is
// still authorized and audited.
func encryptKeyring(c *cli.Context, st *keystore.Store, keys []string) (envelope.Keyring, error) {
	if err := checkCacheFlags(c); err != nil {
		return nil, err
	}
	kr, err := st.EncryptKeyring(c.Context, keys...)
	if err != nil {
		return nil, err
	}
	return encryptErrors{kr}, nil
}

// decryptKeyring returns the keyring that tries the key specs (every store
// key when there are none) and, with --discovery, any admitted KMS key,
// behind the store's decision point like every store key. With --discovery
// alone, an empty store is no error.
func decryptKeyring(c *cli.Context, st *keystore.Store, keys []string) (envelope.Keyring, error) {
	if err := checkCacheFlags(c); err != nil {
		return nil, err
	}
	disc, err := discoveryKeyring(c, st)
	if err != nil {
		return nil, err
	}
	kr, err := st.DecryptKeyring(c.Context, keys...)
	switch {
	case disc != nil && err != nil && len(keys) == 0 && isAny(err, []error{keystore.ErrKeyNotFound}):
		kr = disc
	case err != nil:
		return nil, err
	case disc != nil:
		kr = keyring.NewMulti(kr, disc)
	}
	return kr, nil
}

func checkCacheFlags(c *cli.Context) error {
	if !c.IsSet("cache-max-age") && (c.IsSet("cache-max-messages") || c.IsSet("cache-max-bytes")) {
		return usagef("--cache-max-messages and --cache-max-bytes need --cache-max-age")
	}
	if c.IsSet("cache-max-age") && c.Duration("cache-max-age") <= 0 {
		return usagef("--cache-max-age %s: want a positive duration", c.Duration("cache-max-age"))
	}
	return nil
}

// storeCache is the store's data-key cache configuration from the cache
// flags, or nil when --cache-max-age is not set (or not a flag of the
// command). The cache lives as long as the command.
func storeCache(c *cli.Context) *keyring.CacheOptions {
	if c.Duration("cache-max-age") <= 0 {
		return nil
	}
	return &keyring.CacheOptions{
		MaxAge: c.Duration("cache-max-age"), MaxMessages: c.Uint64("cache-max-messages"),
		MaxBytes: c.Uint64("cache-max-bytes"),
	}
}

// encryptErrors gives failed KMS and PKCS#11 calls on encrypt the key
// error exit code; see kmsFailure.
type encryptErrors struct{ envelope.Keyring }

func (k encryptErrors) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	return kmsFailure(k.Keyring.OnEncrypt(ctx, m))
}
