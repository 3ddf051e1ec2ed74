//go:build !keystack_lite

package main

// This file wires PKCS#11 HSMs into the CLI: the keystore's "pkcs11"
// backend, the PIN prompt and the actions of the "keystack hsm" commands
// (hsm.go). It links github.com/miekg/pkcs11, hence cgo; hsm_lite.go
// stands in for it in the lite build, which hands these commands off.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/internal/pkcs11token"
	"github.com/keystack/keystack/keystore"
)

// The PKCS#11 errors that tui.go classifies.
var (
	errHSMInvalidURI    = hsm.ErrInvalidURI
	errHSMModule        = hsm.ErrModule
	errHSMTokenNotFound = hsm.ErrTokenNotFound
	errHSMUnavailable   = hsm.ErrUnavailable
	hsmKeyErrors        = []error{hsm.ErrKeyNotFound, hsm.ErrKeyExists, hsm.ErrPINIncorrect, hsm.ErrPINLocked, hsm.ErrNoPIN,
		hsm.ErrInvalidKey, hsm.ErrClosed}
)

// newPKCS11Backend is the keystore's pkcs11 backend with the flags' module.
func newPKCS11Backend(c *cli.Context) keystore.Backend { return hsm.NewBackend(hsmOptions(c)) }

// checkPKCS11Ref rejects a key reference (a stored key's ref, -k pkcs11:…,
// --pkcs11-uri) that cannot name a token key, before any module loads.
func checkPKCS11Ref(ref string) error { return pkcs11token.CheckKeyURI(ref) }

// checkTokenURI rejects a URI that cannot name a token (key create
// --generate names the token, not a key).
func checkTokenURI(uri string) error {
	_, err := pkcs11token.ParseURI(uri)
	return err
}

// isPKCS11Call reports whether err is a failed PKCS#11 call.
func isPKCS11Call(err error) bool {
	var ce *pkcs11token.CallError
	return errors.As(err, &ce)
}

// modulePath is --module, else $KEYSTACK_PKCS11_MODULE (cli reads it into
// --module on hsm commands), else SoftHSM2's usual path.
func modulePath(c *cli.Context) string {
	if m := c.String("module"); m != "" {
		return m
	}
	if m := os.Getenv(envPKCS11Module); m != "" {
		return m
	}
	return defaultPKCS11Module
}

// hsmOptions opens tokens with the module of modulePath; the PIN comes
// from the URI's pin-source, $KEYSTACK_PKCS11_PIN, or a terminal prompt.
func hsmOptions(c *cli.Context) hsm.Options {
	return hsm.Options{ModulePath: modulePath(c), Prompt: promptPIN}
}

// tokenOptions are hsmOptions for the hsm commands, which open a token.
func tokenOptions(c *cli.Context) pkcs11token.Options {
	return pkcs11token.Options{ModulePath: modulePath(c), Prompt: promptPIN}
}

// promptPIN asks for a token's PIN on the terminal without echo, so that
// it works while stdin and stdout carry data and never lands in argv.
func promptPIN(_ context.Context, token string) (string, error) {
	tty, err := os.OpenFile(ttyPath, os.O_RDWR, 0)
	if err != nil {
		return "", hsm.ErrNoPIN
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return "", hsm.ErrNoPIN
	}
	fmt.Fprintf(tty, "keystack: PIN for token %q: ", token)
	pin, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	defer clear(pin)
	if err != nil {
		return "", fmt.Errorf("reading PIN: %w", err)
	}
	if len(pin) == 0 {
		return "", hsm.ErrNoPIN
	}
	return string(pin), nil
}

// openToken opens the token --pkcs11-uri names; the caller closes it.
func openToken(c *cli.Context) (*pkcs11token.Token, *pkcs11token.URI, error) {
	if _, err := args(c, 0, 0); err != nil {
		return nil, nil, err
	}
	raw := c.String("pkcs11-uri")
	if raw == "" {
		return nil, nil, usagef("%s: missing --pkcs11-uri", c.Command.HelpName)
	}
	u, err := pkcs11token.ParseURI(raw)
	if err != nil {
		return nil, nil, err
	}
	t, err := pkcs11token.Open(c.Context, u, tokenOptions(c))
	return t, u, err
}

// openObject is openToken and objectLabel: the token and the label of the
// object the command works on; the caller closes the token.
func openObject(c *cli.Context) (*pkcs11token.Token, *pkcs11token.URI, string, error) {
	t, u, err := openToken(c)
	if err != nil {
		return nil, nil, "", err
	}
	label, err := objectLabel(c, u)
	if err != nil {
		t.Close()
		return nil, nil, "", err
	}
	return t, u, label, nil
}

// objectLabel is --label, else the URI's object attribute.
func objectLabel(c *cli.Context, u *pkcs11token.URI) (string, error) {
	if l := c.String("label"); l != "" {
		return l, nil
	}
	if u.Object != "" {
		return u.Object, nil
	}
	return "", usagef("%s: missing --label (or object= in the URI)", c.Command.HelpName)
}

func hsmKeygenAction(c *cli.Context) error {
	id, err := hex.DecodeString(c.String("id"))
	if err != nil {
		return usagef("--id: want hexadecimal digits")
	}
	bits := map[string]int{"aes-256": 256, "rsa-3072": 3072, "rsa-4096": 4096}[c.String("type")]
	if bits == 0 {
		return usagef("--type %q: want aes-256, rsa-3072 or rsa-4096", c.String("type"))
	}
	t, u, label, err := openObject(c)
	if err != nil {
		return err
	}
	defer t.Close()
	if len(id) == 0 {
		id = u.ID
	}
	if bits == 256 {
		err = t.GenerateAESKey(c.Context, label, id)
	} else {
		err = t.GenerateRSAKeyPair(c.Context, label, id, bits)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: generated %s key %q on token %q\n", c.String("type"), label, t.Label())
	return nil
}

// objectView is the JSON shape of a token object: metadata only.
type objectView struct {
	Label   string `json:"label"`
	ID      string `json:"id,omitempty"`
	Type    string `json:"type"`
	KeyType string `json:"key_type"`
	Bits    int    `json:"bits,omitempty"`
}

type tokenView struct {
	Token   string       `json:"token"`
	Objects []objectView `json:"objects"`
}

func hsmListAction(c *cli.Context) error {
	t, _, err := openToken(c)
	if err != nil {
		return err
	}
	defer t.Close()
	objs, err := t.ListObjects(c.Context)
	if err != nil {
		return err
	}
	v := tokenView{Token: t.Label(), Objects: make([]objectView, 0, len(objs))}
	for _, o := range objs {
		v.Objects = append(v.Objects, objectView{Label: o.Label, ID: hex.EncodeToString(o.ID),
			Type: string(o.Type), KeyType: o.KeyType, Bits: o.Bits})
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, v)
	}
	fmt.Fprintf(c.App.Writer, "token: %s\n", v.Token)
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tID\tTYPE\tKEY\tBITS")
	for _, o := range v.Objects {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", o.Label, o.ID, o.Type, o.KeyType, o.Bits)
	}
	return tw.Flush()
}

func hsmExportAction(c *cli.Context) error {
	t, _, label, err := openObject(c)
	if err != nil {
		return err
	}
	defer t.Close()
	kr, err := t.RSAKeyring(c.Context, label)
	if err != nil {
		return err
	}
	pemBytes, err := kr.PublicKeyPEM(c.Context)
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(pemBytes)
	return err
}
