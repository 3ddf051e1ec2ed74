package main

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the keystore",
		Description: "Creates the keystore in --home, sealed under a passphrase from --passphrase-file,\n" +
			"$KEYSTACK_PASSPHRASE or a terminal prompt (asked twice). The passphrase is never\n" +
			"accepted as an argument.",
		Flags: []cli.Flag{
			passphraseFileFlag,
			&cli.BoolFlag{Name: "insecure-no-passphrase", Usage: "store keys unsealed, protected only by file permissions"},
			&cli.StringFlag{Name: "kdf", Usage: "passphrase KDF: argon2id (default) or scrypt"},
			&cli.BoolFlag{Name: "trust-principal-env", Usage: "take the principal from $KEYSTACK_PRINCIPAL (tests, CI); it also names the owner"},
			storageFlag,
		},
		Action: initAction,
	}
}

func initAction(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	dir, err := homeDir(c)
	if err != nil {
		return err
	}
	opts := keystore.InitOptions{Insecure: c.Bool("insecure-no-passphrase"), KDF: c.String("kdf"),
		TrustPrincipalEnv: c.Bool("trust-principal-env")}
	if opts.TrustPrincipalEnv {
		opts.Owner = os.Getenv(keystore.PrincipalEnv)
	}
	if !opts.Insecure {
		if opts.Passphrase, err = passphraseSource(c.String("passphrase-file"), true)(); err != nil {
			return err
		}
		defer clear(opts.Passphrase)
	}
	if opts.Storage, err = openStorage(c, true); err != nil {
		return err
	}
	if opts.Storage != nil { // init's records go where every command's do
		if opts.Audit, err = replicaAudit(c); err != nil {
			return err
		}
	}
	st, err := keystore.Init(dir, opts)
	if err != nil {
		return err
	}
	st.Close()
	fmt.Fprintf(c.App.ErrWriter, "keystack: created keystore in %s\n", storageName(c, dir))
	return nil
}

func keyCommand() *cli.Command {
	return &cli.Command{
		Name:  "key",
		Usage: "manage master keys",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a master key", ArgsUsage: "NAME",
				Flags: append([]cli.Flag{passphraseFileFlag,
					&cli.StringFlag{Name: "description", Usage: "free-text description"},
					&cli.StringFlag{Name: "backend", Usage: "key backend (default: the local keystore)"},
					&cli.StringFlag{Name: "ref", Usage: "backend key reference (KMS key ARN, HSM label)"},
					&cli.BoolFlag{Name: "generate", Usage: "with --backend pkcs11: make a new AES-256 key on the token --pkcs11-uri names (labeled NAME/v1; it never leaves the token)"},
				}, keyCreateFlags()...),
				Action: keyCreateAction,
			},
			{
				Name: "list", Usage: "list master keys (metadata only)",
				Flags:  []cli.Flag{passphraseFileFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: keyListAction,
			},
			{
				Name: "show", Usage: "show a master key's metadata (never its value)", ArgsUsage: "NAME",
				Flags:  []cli.Flag{passphraseFileFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: keyShowAction,
			},
			keyImportCommand(),
		},
	}
}

func keyCreateAction(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	backend, ref, err := createRef(c)
	if err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		_, err = st.CreateKey(c.Context, a[0], keystore.CreateKeyOptions{
			Backend: backend, Ref: ref, Description: c.String("description"), Generate: c.Bool("generate"),
		})
		if err != nil {
			return kmsFailure(err) // resolving an alias asks KMS
		}
		fmt.Fprintf(c.App.ErrWriter, "keystack: created key %s\n", a[0])
		return nil
	})
}

// keyView is the JSON shape of a key's metadata. It has no field that
// could hold key material.
type keyView struct {
	Name        string        `json:"name"`
	Backend     string        `json:"backend"`
	Kind        string        `json:"kind,omitempty"`
	Namespace   string        `json:"namespace,omitempty"`
	KeyName     string        `json:"key_name,omitempty"`
	Description string        `json:"description,omitempty"`
	Created     time.Time     `json:"created"`
	Primary     int           `json:"primary_version"`
	Versions    []versionView `json:"versions"`
	// Rotation and History are shown by key show only.
	Rotation   *rotationView  `json:"rotation,omitempty"`
	MinDecrypt int            `json:"min_decrypt_version,omitempty"`
	History    []historyEvent `json:"history,omitempty"`
}

type versionView struct {
	Version int       `json:"version"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	Ref     string    `json:"ref,omitempty"`
	Alias   string    `json:"alias,omitempty"`
}

func viewKey(k *keystore.KeyInfo) keyView {
	v := keyView{
		Name: k.Name, Backend: k.Backend, Kind: fmt.Sprint(k.Kind), Namespace: k.Namespace,
		KeyName: k.KeyName, Description: k.Description, Created: k.Created, Primary: k.Primary,
		Versions: []versionView{},
	}
	for _, ver := range k.Versions {
		v.Versions = append(v.Versions, versionView{
			Version: ver.Version, State: fmt.Sprint(ver.State), Created: ver.Created, Ref: ver.Ref,
			Alias: ver.Alias,
		})
	}
	return v
}

var keyListAction = storeAction(0, 0, func(c *cli.Context, st *keystore.Store, _ []string) error {
	keys, err := st.ListKeys(c.Context)
	if err != nil {
		return err
	}
	views := make([]keyView, 0, len(keys))
	for i := range keys {
		views = append(views, viewKey(&keys[i]))
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, views)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBACKEND\tKIND\tPRIMARY\tVERSIONS\tCREATED\tDESCRIPTION")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\tv%d\t%d\t%s\t%s\n", v.Name, v.Backend, v.Kind, v.Primary,
			len(v.Versions), v.Created.UTC().Format(time.RFC3339), v.Description)
	}
	return tw.Flush()
})

var keyShowAction = storeAction(1, 1, func(c *cli.Context, st *keystore.Store, a []string) error {
	k, err := st.DescribeKey(c.Context, a[0])
	if err != nil {
		return err
	}
	v := viewKey(k)
	v.Rotation, v.MinDecrypt, v.History = viewRotation(k), k.MinDecryptVersion, viewHistory(k)
	if c.Bool("json") {
		return writeJSON(c.App.Writer, v)
	}
	printKey(c.App.Writer, v)
	printRotation(c.App.Writer, v.Rotation, v.MinDecrypt)
	printHistory(c.App.Writer, v.History)
	return nil
})

func printKey(w io.Writer, v keyView) {
	fmt.Fprintf(w, "name:        %s\nbackend:     %s\n", v.Name, v.Backend)
	if v.Kind != "" {
		fmt.Fprintf(w, "kind:        %s\n", v.Kind)
	}
	if v.Namespace != "" || v.KeyName != "" {
		fmt.Fprintf(w, "namespace:   %s\nkey name:    %s\n", v.Namespace, v.KeyName)
	}
	fmt.Fprintf(w, "description: %s\ncreated:     %s\nprimary:     v%d\nversions:\n",
		v.Description, v.Created.UTC().Format(time.RFC3339), v.Primary)
	for _, ver := range v.Versions {
		ref := ver.Ref
		if ver.Alias != "" {
			ref += " (registered as " + ver.Alias + ")"
		}
		fmt.Fprintf(w, "  v%d  %s  %s  %s\n", ver.Version, ver.State, ver.Created.UTC().Format(time.RFC3339), ref)
	}
}

func keyImportCommand() *cli.Command {
	return &cli.Command{
		Name: "import", Usage: "import an existing raw AES or RSA wrapping key", ArgsUsage: "NAME",
		Description: "Imports key material shared with other AWS Encryption SDK users, as a raw AES or\n" +
			"raw RSA keyring identified by --namespace (provider ID) and --key-name.",
		Flags: []cli.Flag{passphraseFileFlag,
			&cli.StringFlag{Name: "aes-key-file", Usage: "AES wrapping key `FILE`: 16, 24 or 32 raw bytes, or their base64"},
			&cli.StringFlag{Name: "rsa-private-key-file", Usage: "RSA private key `FILE` (PEM, PKCS#8)"},
			&cli.StringFlag{Name: "rsa-public-key-file", Usage: "RSA public key `FILE` (PEM, SubjectPublicKeyInfo); encrypt only"},
			&cli.StringFlag{Name: "rsa-padding", Usage: "oaep-sha1|oaep-sha256|oaep-sha384|oaep-sha512|pkcs1 (default oaep-sha256)"},
			&cli.StringFlag{Name: "namespace", Usage: "key namespace (the ESDK provider ID)"},
			&cli.StringFlag{Name: "key-name", Usage: "key name within the namespace (default: NAME)"},
		},
		Action: keyImportAction,
	}
}

func keyImportAction(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		opts, err := importOptions(c) // once the store is open: a lite build hands off there, before reading a pipe
		if err != nil {
			return err
		}
		defer clear(opts.AESKey)
		if opts.Namespace != "" && opts.KeyName == "" {
			opts.KeyName = a[0]
		}
		if _, err := st.ImportKey(c.Context, a[0], opts); err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "keystack: imported key %s\n", a[0])
		return nil
	})
}

// importOptions reads the key files named by the flags. Exactly one kind
// of key material is allowed.
func importOptions(c *cli.Context) (keystore.ImportKeyOptions, error) {
	opts := keystore.ImportKeyOptions{
		Namespace: c.String("namespace"), KeyName: c.String("key-name"),
		RSAPadding: keyring.RSAPadding(c.String("rsa-padding")),
	}
	aesFile, privFile, pubFile := c.String("aes-key-file"), c.String("rsa-private-key-file"), c.String("rsa-public-key-file")
	switch {
	case countSet(aesFile, privFile, pubFile) > 1:
		return opts, usagef("key import: give one of --aes-key-file, --rsa-private-key-file, --rsa-public-key-file")
	case aesFile == "" && privFile == "" && pubFile == "":
		return opts, usagef("key import: missing --aes-key-file, --rsa-private-key-file or --rsa-public-key-file")
	case aesFile != "" && opts.RSAPadding != "":
		return opts, usagef("key import: --rsa-padding applies to RSA keys only")
	}
	var err error
	if aesFile != "" {
		opts.AESKey, err = readAESKey(aesFile)
		return opts, err
	}
	if privFile != "" {
		opts.RSAPrivateKey, err = readRSAKey(privFile, keyring.ParseRSAPrivateKeyPEM)
		return opts, err
	}
	opts.RSAPublicKey, err = readRSAKey(pubFile, keyring.ParseRSAPublicKeyPEM)
	return opts, err
}

func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}

// maxKeyFile bounds key files: a PEM RSA-16384 private key is under 13 KiB.
const maxKeyFile = 64 << 10

func readKeyFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		clear(data)
		return nil, fmt.Errorf("%w: key file %s is larger than %d bytes", keyring.ErrInvalidKey, name, maxKeyFile)
	}
	return data, nil
}

// readAESKey accepts 16, 24 or 32 raw bytes, or base64 text of them
// (surrounding whitespace ignored). Errors never quote the file's content.
func readAESKey(name string) ([]byte, error) {
	data, err := readKeyFile(name)
	if err != nil {
		return nil, err
	}
	// Base64 first: the base64 of 16 or 24 bytes is 24 or 32 characters
	// long, while random raw bytes are almost never valid base64.
	text := bytes.TrimSpace(data)
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	if n, err := base64.StdEncoding.Decode(key, text); err == nil && validAESLen(n) {
		clear(data)
		return key[:n], nil
	}
	clear(key)
	if validAESLen(len(data)) {
		return data, nil
	}
	n := len(data)
	clear(data)
	return nil, fmt.Errorf("%w: %s: an AES key must be 16, 24 or 32 bytes, raw or base64 (file has %d bytes)",
		keyring.ErrInvalidKey, name, n)
}

func validAESLen(n int) bool { return n == 16 || n == 24 || n == 32 }

func readRSAKey[K *rsa.PrivateKey | *rsa.PublicKey](name string, parse func([]byte) (K, error)) (K, error) {
	data, err := readKeyFile(name)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	k, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return k, nil
}
