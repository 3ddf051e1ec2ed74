package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
)

// Flags shared by encrypt and decrypt.
func cryptFlags() []cli.Flag {
	return append([]cli.Flag{
		passphraseFileFlag,
		&cli.StringSliceFlag{Name: "key", Aliases: []string{"k"}, Usage: "master key `NAME` (repeatable)"},
		&cli.StringSliceFlag{Name: "context", Aliases: []string{"c", "encryption-context"}, Usage: "encryption context pair `KEY=VALUE` (repeatable; decrypt also takes a bare KEY, which the message's context must hold)"},
		&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Value: "-", Usage: "input `FILE` (- for stdin)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "-", Usage: "output `FILE` (- for stdout)"},
		&cli.StringFlag{Name: "recursive", Usage: "process every file under `DIR` (needs --output-dir)"},
		&cli.StringFlag{Name: "output-dir", Usage: "with --recursive, mirror the tree into `DIR`"},
		&cli.StringFlag{Name: "suffix", Value: defaultSuffix, Usage: "with --recursive or -o DIR, the `SUFFIX` encrypt appends to names and decrypt strips (tree files without it are skipped)"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite existing output files"},
		&cli.BoolFlag{Name: "skip-existing", Aliases: []string{"no-overwrite"}, Usage: "leave existing outputs alone and process the other files " +
			"(outputs appear only complete, so a rerun finishes an interrupted tree)"},
		&cli.StringFlag{Name: "sync", Value: "file", Usage: "output durability `MODE`: file (fsync each output before it is renamed into place, so it survives a crash), " +
			"batch (the same guarantee with one flush per filesystem for up to 1024 outputs, published together: faster for trees of small files) " +
			"or none (like cp: never partial, but may be lost or empty after a power failure)"},
		&cli.BoolFlag{Name: "json", Usage: "print metadata as JSON on stdout (on stderr when stdout carries data)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
	}, verbosityFlags()...)
}

func encryptCommand() *cli.Command {
	return &cli.Command{
		Name:  "encrypt",
		Usage: "encrypt a file or stream into an AWS Encryption SDK v2 message",
		Description: "Wraps a fresh data key under every -k master key. With --recursive DIR --output-dir OUT,\n" +
			"each file DIR/P is written to OUT/P.ks. Existing outputs are kept unless --force.",
		Flags: append(append(append(cryptFlags(), encryptFlags()...), esdkEncryptFlags()...),
			&cli.StringSliceFlag{Name: "required-context", Usage: "context `KEY` authenticated but not stored: decrypt must supply it (repeatable)"},
			&cli.IntFlag{Name: "frame-size", Aliases: []string{"frame-length"}, Value: envelope.DefaultFrameLength, Usage: "plaintext bytes per frame (at most --max-frame-size)"},
			maxFrameSizeFlag,
			&cli.BoolFlag{Name: "signed", Usage: "add an ECDSA P-384 signature (suite 0x0578)"},
			&cli.BoolFlag{Name: "encode", Usage: "write the message base64-encoded (as the AWS Encryption CLI's --encode)"},
		),
		Action: encryptAction,
	}
}

func decryptCommand() *cli.Command {
	return &cli.Command{
		Name:  "decrypt",
		Usage: "decrypt and authenticate a message",
		Description: "Without -k every key in the keystore is tried. -c pairs must match the message's\n" +
			"context and must include every required context key.\n\n" +
			"Decrypting to a file publishes the plaintext only after the whole message authenticated.\n" +
			"Decrypting to stdout, or to an existing device, FIFO or socket (written in place, never\n" +
			"replaced), streams: every frame is authenticated before its plaintext is\n" +
			"written, but if a later frame or the signature fails, earlier authentic frames have\n" +
			"already been written (as with the AWS Encryption CLI); --buffer writes nothing until\n" +
			"the whole message authenticated. With --recursive, OUT/P is written for each DIR/P.ks;\n" +
			"other files are skipped.",
		Flags: append(append(append(cryptFlags(), decryptFlags()...), esdkDecryptFlags()...),
			&cli.BoolFlag{Name: "buffer", Aliases: []string{"b"}, Usage: "with output to stdout (or a device, FIFO or socket), write nothing until the whole message authenticated " +
				"(the plaintext waits in an unnamed temporary file in $TMPDIR, so memory stays bounded)"},
			decodeFlag,
			&cli.BoolFlag{Name: "allow-legacy", Usage: "accept non-committing message format v1 suites"},
			&cli.IntFlag{Name: "max-encrypted-data-keys", Usage: "refuse messages with more encrypted data keys (0: library default)"},
			maxFrameSizeFlag,
		),
		Action: decryptAction,
	}
}

// maxFrameSizeFlag bounds frame lengths: decrypt refuses messages whose
// header declares larger frames (it holds whole frames in memory), and
// encrypt refuses to write frames that readers refuse by default.
var maxFrameSizeFlag = &cli.IntFlag{Name: "max-frame-size", Value: envelope.DefaultMaxFrameLength,
	Usage: "largest frame `BYTES` accepted: decrypt refuses messages with larger frames before using any key " +
		"(memory holds whole frames), encrypt refuses a larger --frame-size"}

// maxFrameSize reads --max-frame-size, which must fit a frame length.
func maxFrameSize(c *cli.Context) (int, error) {
	n := c.Int("max-frame-size")
	if n < 1 || int64(n) > 1<<32-1 {
		return 0, usagef("--max-frame-size %d: want 1 to 4294967295", n)
	}
	return n, nil
}

// contextFlags are the flags whose values become encryption context.
var contextFlags = []string{"-c", "--c", "-context", "--context", "-encryption-context", "--encryption-context",
	"-required-context", "--required-context"}

// checkContextArgs refuses encryption context that is not UTF-8 (the
// format allows only UTF-8) before the flag parser sees it: urfave/cli
// passes slice flags through JSON, which silently turns invalid bytes
// into U+FFFD, so the message would hold another context than given.
func checkContextArgs(args []string) error {
	for i, a := range args {
		if a == "--" {
			return nil
		}
		name, val, glued := strings.Cut(a, "=")
		if !slices.Contains(contextFlags, name) {
			continue
		}
		if !glued {
			if i+1 >= len(args) {
				continue
			}
			val = args[i+1]
		}
		if !utf8.ValidString(val) {
			return usagef("%s %q: encryption context keys and values must be valid UTF-8", name, val)
		}
	}
	return nil
}

// parseContext turns -c KEY=VALUE flags into a map.
func parseContext(pairs []string) (map[string]string, error) {
	ec := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--context %q: want KEY=VALUE", p)
		}
		if old, dup := ec[k]; dup && old != v {
			return nil, usagef("--context: key %q given twice with different values", k)
		}
		ec[k] = v
	}
	return ec, nil
}

func encryptOptions(c *cli.Context) (envelope.EncryptOptions, error) {
	ec, err := parseContext(c.StringSlice("context"))
	if err != nil {
		return envelope.EncryptOptions{}, err
	}
	suite, err := encryptSuite(c)
	if err != nil {
		return envelope.EncryptOptions{}, err
	}
	opts := envelope.EncryptOptions{
		Suite: suite, FrameLength: c.Int("frame-size"),
		Context: ec, RequiredContextKeys: c.StringSlice("required-context"),
		MaxEncryptedDataKeys: c.Int("max-encrypted-data-keys"),
	}
	if opts.MaxEncryptedDataKeys < 0 {
		return opts, usagef("--max-encrypted-data-keys %d: want 1 or more (0: no limit)", opts.MaxEncryptedDataKeys)
	}
	if opts.FrameLength < 1 || int64(opts.FrameLength) > 1<<32-1 {
		return opts, usagef("--frame-size %d: want 1 to 4294967295", opts.FrameLength)
	}
	if opts.MaxFrameLength, err = maxFrameSize(c); err != nil {
		return opts, err
	}
	if opts.FrameLength > opts.MaxFrameLength {
		return opts, usagef("--frame-size %d is above --max-frame-size %d: readers refuse such frames by default "+
			"(pass --max-frame-size %d to write them anyway; decrypting them needs it too)", opts.FrameLength, opts.MaxFrameLength, opts.FrameLength)
	}
	for _, k := range opts.RequiredContextKeys {
		if _, ok := ec[k]; !ok {
			return opts, usagef("--required-context %q: no -c %s=VALUE given", k, k)
		}
	}
	return opts, nil
}

func encryptAction(c *cli.Context) error {
	opts, keys, err := encryptArgs(c, nil)
	if err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		kr, err := encryptKeyring(c, st, keys)
		if err != nil {
			return err
		}
		job := &crypter{c: c, keys: keys, encrypt: true, kr: kr, eopts: opts}
		return job.runAll()
	})
}

// encryptArgs checks encrypt's arguments and flags (check: the mode's own
// flag checks, run once the options parse; nil for none) and returns the
// options and the -k keys.
func encryptArgs(c *cli.Context, check func(*cli.Context) error) (envelope.EncryptOptions, []string, error) {
	lazyGC()
	if err := checkArgs(c); err != nil {
		return envelope.EncryptOptions{}, nil, err
	}
	opts, err := encryptOptions(c)
	if err == nil && check != nil {
		err = check(c)
	}
	if err != nil {
		return opts, nil, err
	}
	// As age does: ciphertext on a terminal is garbage and can upset it.
	if !c.IsSet("output") && c.String("recursive") == "" && !c.Bool("encode") && isTerminal(c.App.Writer) {
		return opts, nil, usagef("refusing to write binary ciphertext to a terminal: redirect stdout or pass -o FILE (-o - forces it)")
	}
	keys := c.StringSlice("key")
	if len(keys) == 0 {
		return opts, nil, usagef("encrypt: missing -k NAME")
	}
	return opts, keys, nil
}

func decryptAction(c *cli.Context) error {
	opts, needKeys, err := decryptArgs(c, nil)
	if err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		keys := c.StringSlice("key")
		kr, err := decryptKeyring(c, st, keys)
		if err != nil {
			return err
		}
		job := &crypter{c: c, keys: keys, kr: kr, dopts: opts, runState: runState{needKeys: needKeys}}
		return job.runAll()
	})
}

// decryptArgs is encryptArgs for decrypt: it returns the options and the
// bare -c KEYs.
func decryptArgs(c *cli.Context, check func(*cli.Context) error) (envelope.DecryptOptions, []string, error) {
	lazyGC()
	if err := checkArgs(c); err != nil {
		return envelope.DecryptOptions{}, nil, err
	}
	opts, needKeys, err := decryptOptions(c)
	if err == nil && check != nil {
		err = check(c)
	}
	return opts, needKeys, err
}

// decryptOptions reads decrypt's flags; needKeys are the bare -c KEYs.
func decryptOptions(c *cli.Context) (opts envelope.DecryptOptions, needKeys []string, err error) {
	ec, needKeys, err := parseDecryptContext(c.StringSlice("context"))
	if err != nil {
		return opts, nil, err
	}
	maxFrame, err := maxFrameSize(c)
	if err != nil {
		return opts, nil, err
	}
	legacy, err := decryptAllowsLegacy(c)
	if err != nil {
		return opts, nil, err
	}
	if c.Int("max-encrypted-data-keys") < 0 {
		return opts, nil, usagef("--max-encrypted-data-keys %d: want 1 or more (0: library default)", c.Int("max-encrypted-data-keys"))
	}
	return envelope.DecryptOptions{
		AllowLegacy: legacy, Context: ec, RequireUnsigned: c.Bool("decrypt-unsigned"),
		MaxEncryptedDataKeys: c.Int("max-encrypted-data-keys"), MaxFrameLength: maxFrame,
	}, needKeys, nil
}

// decodeFlag reads base64 messages (decrypt, inspect).
var decodeFlag = &cli.BoolFlag{Name: "decode", Usage: "read the message base64-encoded (as the AWS Encryption CLI's --decode)"}

// base64Source reads base64 text, reporting input that is not base64 as a
// malformed message (exit 3) rather than an I/O error.
type base64Source struct{ r io.Reader }

func newBase64Source(r io.Reader) io.Reader {
	return &base64Source{base64.NewDecoder(base64.StdEncoding, r)}
}

func (b *base64Source) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		err = fmt.Errorf("%w: --decode: input is not base64 (%v)", envelope.ErrMalformed, err)
	}
	return n, err
}

// lazyGC lets the heap grow to 16 MiB before the first collection instead
// of 4 MiB. Encrypting and decrypting hold a few MiB whatever the input
// size (buffers are recycled), so the default only buys a collection in
// the middle of start-up: about 2 ms of a 15 ms small-file command.
func lazyGC() { debug.SetGCPercent(400) }

// checkArgs rejects positional arguments and contradictory input and
// output flags.
func checkArgs(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	rec, outDir := c.String("recursive"), c.String("output-dir")
	switch {
	case rec != "" && outDir == "":
		return usagef("--recursive needs --output-dir")
	case rec == "" && outDir != "":
		return usagef("--output-dir needs --recursive")
	case rec != "" && (c.IsSet("input") || c.IsSet("output")):
		return usagef("--recursive replaces -i and -o")
	case c.String("suffix") == "" || strings.ContainsAny(c.String("suffix"), "/"+string(filepath.Separator)):
		return usagef("--suffix %q: want a non-empty suffix without a path separator", c.String("suffix"))
	case c.String("sync") != "file" && c.String("sync") != "batch" && c.String("sync") != "none":
		return usagef("--sync %q: want file, batch or none", c.String("sync"))
	}
	return nil
}

func wrapPath(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", path, err)
}
