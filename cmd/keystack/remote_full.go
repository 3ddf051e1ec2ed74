//go:build !keystack_lite

package main

// The server-mode actions of remote.go's commands, which link package
// client and through it the AWS SDK's KMS client; remote_lite.go stands
// in for them in the lite build, which hands server mode off.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/client"
	"github.com/keystack/keystack/internal/clientenv"
)

// remoteActions are the server-mode actions of remoteCommands, by path;
// the commands marked true there call theirs themselves.
var remoteActions = map[string]func(c *cli.Context, cl *client.Client) error{
	"encrypt": remoteEncrypt, "decrypt": remoteDecrypt,
	"key create": remoteKeyCreate, "key list": remoteKeyList, "key show": remoteKeyShow, "key rotate": remoteKeyRotate,
	"policy get": remotePolicyGet, "policy put": remotePolicyPut, "policy reset": remotePolicyReset,
	"audit verify": remoteAuditVerify, "audit checkpoint": remoteAuditCheckpoint,
	"audit reset-anchor": remoteUnsupported, "passphrase change": remoteUnsupported,
	"server credentials create": remoteCredCreate, "server credentials list": remoteCredList,
	"server credentials revoke": remoteCredRevoke,
}

// remoteRun runs the server-mode action of the command at path.
func remoteRun(c *cli.Context, path string) error { return withClient(c, remoteActions[path]) }

// The key server errors that tui.go classifies.
var (
	errServerTLSTrust = client.ErrTLSTrust
	serverKeyErrors   = []error{client.ErrNotFound, client.ErrExists}
)

// isServerUnavailable reports an error of no key server answering.
func isServerUnavailable(err error) bool { return errors.As(err, new(*client.UnavailableError)) }

// withClient runs fn with a client of the servers the flags name.
func withClient(c *cli.Context, fn func(c *cli.Context, cl *client.Client) error) error {
	cfg := client.Config{Endpoints: c.StringSlice("server"), Region: c.String("server-region"), CAFile: c.String("server-ca"),
		CertFile: c.String("client-cert"), KeyFile: c.String("client-key"), Timeout: c.Duration("server-timeout"),
		AccessKeyID: os.Getenv(clientenv.AccessKeyID), SecretAccessKey: os.Getenv(clientenv.SecretKey)}
	cl, err := client.New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	defer cl.Close()
	return fn(c, cl)
}

func remoteUnsupported(c *cli.Context, _ *client.Client) error {
	return usagef("%s does not work through a key server (%s is set): it needs the keystore itself; run it on the server host without --server",
		c.Command.HelpName, envServer)
}

func remoteKeyCreate(c *cli.Context, cl *client.Client) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	if c.String("backend") != "" || c.String("ref") != "" || c.String("kms-key") != "" || c.String("pkcs11-uri") != "" || c.Bool("generate") {
		return usagef("key create --server: the server makes its own AES-256 keys; --backend, --ref, --kms-key, --pkcs11-uri and --generate are for local keystores")
	}
	k, err := cl.CreateKey(c.Context, a[0], c.String("description"))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: created key %s as %s\n", a[0], k.ARN)
	return nil
}

func remoteKeyList(c *cli.Context, cl *client.Client) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	keys, err := cl.ListKeys(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if keys == nil {
			keys = []client.Key{}
		}
		return writeJSON(c.App.Writer, keys)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tALIASES\tSTATE\tCREATED\tDESCRIPTION")
	for _, k := range keys {
		if k.DescribeDenied {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t(not allowed to describe)\n", k.KeyID, strings.Join(k.Aliases, ","))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KeyID, strings.Join(k.Aliases, ","), k.State,
			k.Created.Format(time.RFC3339), k.Description)
	}
	return tw.Flush()
}

func remoteKeyShow(c *cli.Context, cl *client.Client) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	k, err := cl.ShowKey(c.Context, a[0])
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, k)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "key id:      %s\narn:         %s\naliases:     %s\nstate:       %s\ndescription: %s\ncreated:     %s\n",
		k.KeyID, k.ARN, strings.Join(k.Aliases, ", "), k.State, k.Description, k.Created.Format(time.RFC3339))
	for t, v := range k.Tags {
		fmt.Fprintf(w, "tag:         %s=%s\n", t, v)
	}
	fmt.Fprintf(w, "rotation:    enabled=%t", k.RotationEnabled)
	if k.RotationEnabled {
		fmt.Fprintf(w, " every %d days", k.RotationPeriod)
	}
	fmt.Fprintf(w, "\nrotations:   %d on demand\n", len(k.Rotations))
	return nil
}

func remoteKeyRotate(c *cli.Context, cl *client.Client) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	if c.IsSet("reason") {
		warnf(c.App.ErrWriter, "--reason is not sent to a key server (its audit record names the caller and the key)")
	}
	arn, err := cl.RotateKey(c.Context, a[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: rotated key %s (%s)\n", a[0], arn)
	return nil
}

// errAuditInvalid is an audit log the server reports damaged (exit 3).
var errAuditInvalid = client.ErrAuditInvalid

func remoteAuditVerify(c *cli.Context, cl *client.Client) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	if len(c.StringSlice("anchor")) > 0 {
		return usagef("audit verify --anchor does not work through a key server: copy the head to the server host and run it there")
	}
	rep, err := cl.VerifyAudit(c.Context)
	if errors.Is(err, errAuditInvalid) {
		return &codedError{code: exitAuth, err: err}
	}
	if err != nil {
		return err
	}
	var r struct {
		Records, Checkpoints int
		Head                 string
	}
	if err := jsonUnmarshal(rep, &r); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "audit log OK: %d records, %d checkpoints, head %s\n", r.Records, r.Checkpoints, r.Head)
	return nil
}
