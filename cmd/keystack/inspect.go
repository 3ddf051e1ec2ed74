package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a message's header: suite, context, wrapping keys (no key or passphrase needed)",
		ArgsUsage: "FILE",
		Description: "Parses the header of FILE (\"-\" for stdin) without decrypting it. Nothing shown is\n" +
			"authenticated: use it to see which keys a message needs, never to trust its contents.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the header as JSON"},
			&cli.IntFlag{Name: "max-encrypted-data-keys", Usage: "refuse headers with more encrypted data keys (0: library default)"},
			decodeFlag,
		},
		Action: inspectAction,
	}
}

// headerView is the JSON and text shape of a header, shared by inspect and
// by the --json metadata of encrypt and decrypt.
type headerView struct {
	Version           int               `json:"version"`
	Suite             string            `json:"suite"`
	SuiteID           string            `json:"suite_id"`
	MessageID         string            `json:"message_id"`
	EncryptionContext map[string]string `json:"encryption_context"`
	EncryptedDataKeys []keyring.EDKInfo `json:"encrypted_data_keys"`
	ContentType       string            `json:"content_type"`
	FrameLength       uint32            `json:"frame_length"`
	HeaderLength      int               `json:"header_length"`
}

func viewHeader(h *envelope.Header) headerView {
	v := headerView{
		Version:           h.Version,
		Suite:             h.Suite.String(),
		SuiteID:           fmt.Sprintf("0x%04X", uint16(h.Suite)),
		MessageID:         hex.EncodeToString(h.MessageID),
		EncryptionContext: h.EncryptionContext,
		ContentType:       "framed",
		FrameLength:       h.FrameLength,
		HeaderLength:      h.HeaderLength,
	}
	if v.EncryptionContext == nil {
		v.EncryptionContext = map[string]string{}
	}
	if h.ContentType == 1 {
		v.ContentType = "non-framed"
	}
	for _, edk := range h.EncryptedDataKeys {
		v.EncryptedDataKeys = append(v.EncryptedDataKeys, keyring.DescribeEDK(edk))
	}
	return v
}

func inspectAction(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	src, closeSrc, err := openInput(c, a[0])
	if err != nil {
		return err
	}
	defer closeSrc()
	if c.Bool("decode") {
		src = newBase64Source(src)
	}
	h, err := envelope.Inspect(src, envelope.InspectOptions{MaxEncryptedDataKeys: c.Int("max-encrypted-data-keys")})
	if err != nil {
		return fmt.Errorf("%s: %w", a[0], err)
	}
	v := viewHeader(h)
	if c.Bool("json") {
		return writeJSON(c.App.Writer, v)
	}
	printHeader(c.App.Writer, v)
	return nil
}

func printHeader(w io.Writer, v headerView) {
	fmt.Fprintf(w, "version:       %d\n", v.Version)
	fmt.Fprintf(w, "suite:         %s (%s)\n", v.Suite, v.SuiteID)
	fmt.Fprintf(w, "message id:    %s\n", v.MessageID)
	fmt.Fprintf(w, "content type:  %s\n", v.ContentType)
	fmt.Fprintf(w, "frame length:  %d\n", v.FrameLength)
	fmt.Fprintf(w, "header length: %d\n", v.HeaderLength)
	keys := make([]string, 0, len(v.EncryptionContext))
	for k := range v.EncryptionContext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "encryption context: %d\n", len(keys))
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, v.EncryptionContext[k])
	}
	fmt.Fprintf(w, "encrypted data keys: %d\n", len(v.EncryptedDataKeys))
	for i, e := range v.EncryptedDataKeys {
		fmt.Fprintf(w, "  [%d] provider: %s\n      key: %s\n", i+1, e.ProviderID, e.KeyName)
		if e.Version > 0 {
			fmt.Fprintf(w, "      version: %d\n", e.Version)
		}
		if len(e.IV) > 0 {
			fmt.Fprintf(w, "      iv: %s\n", hex.EncodeToString(e.IV))
		}
	}
}

// openInput opens name for reading; "-" or "" is stdin, which is not closed.
func openInput(c *cli.Context, name string) (io.Reader, func(), error) {
	if name == "" || name == "-" {
		return c.App.Reader, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}
