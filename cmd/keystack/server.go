package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
)

// serverCommand is `keystack server`: it parses flags and runs package
// server (server_full.go); `server credentials` manages the access keys
// it accepts.
func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "serve the keystore over the AWS KMS API until SIGTERM or SIGINT",
		Description: "Unseals the keystore once, then answers AWS KMS JSON 1.1 requests (the AWS CLI, boto3, the AWS SDKs)\n" +
			"on a Unix socket, TLS, or plain HTTP on a loopback address (tests only). Every request is\n" +
			"authenticated (SigV4 with `keystack server credentials`, a TLS client certificate's SPIFFE ID,\n" +
			"or the Unix socket peer's user), decided by the keystore policy and audited before it acts.\n" +
			"SIGHUP rereads the TLS certificate and --xks-config; SIGTERM or SIGINT drains in-flight requests and exits 0.",
		Flags: []cli.Flag{passphraseFileFlag,
			&cli.StringFlag{Name: "unix", Usage: "listen on the Unix socket `PATH`"},
			&cli.StringFlag{Name: "unix-mode", Value: "0600", Usage: "permission bits of the Unix socket"},
			&cli.StringFlag{Name: "listen", Usage: "serve TLS on `ADDR` (host:port)"},
			&cli.StringFlag{Name: "tls-cert", Usage: "TLS certificate chain `FILE` (PEM)"},
			&cli.StringFlag{Name: "tls-key", Usage: "TLS private key `FILE` (PEM)"},
			&cli.BoolFlag{Name: "tls12", Usage: "accept TLS 1.2 clients (default: TLS 1.3 only)"},
			&cli.StringFlag{Name: "client-ca", Usage: "verify TLS client certificates against `FILE` (mutual TLS)"},
			&cli.StringSliceFlag{Name: "client-cert-principal", Usage: "map a client certificate without a SPIFFE ID to a principal: `SHA256=PRINCIPAL`, the hex SHA-256 of its public key (SubjectPublicKeyInfo) (repeatable)"},
			&cli.BoolFlag{Name: "require-client-cert", Usage: "with --client-ca: refuse TLS clients without a certificate"},
			&cli.StringFlag{Name: "insecure-http-loopback", Usage: "serve plain HTTP on the loopback `ADDR` (127.0.0.1:PORT), for tests"},
			&cli.StringFlag{Name: "region", Value: defaultRegion, Usage: "the Region in key ARNs and SigV4 scopes"},
			&cli.StringFlag{Name: "account", Value: defaultAccount, Usage: "the account ID in key ARNs"},
			&cli.IntFlag{Name: "max-conns", Value: 1024, Usage: "concurrent connections per listener"},
			&cli.Float64Flag{Name: "rate-limit", Usage: "requests a second each principal may make on average (0: no limit)"},
			&cli.IntFlag{Name: "rate-burst", Usage: "requests a principal may make at once (default: the rate, at least 1)"},
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics at http://`ADDR`/metrics"},
			&cli.StringSliceFlag{Name: "custom-key-store", Usage: "let CreateKey with Origin AWS_CLOUDHSM and CustomKeyStoreId `ID` generate keys on the PKCS#11 token URI names: ID=pkcs11:token=…?pin-source=file:… (repeatable; the PIN from pin-source or $KEYSTACK_PKCS11_PIN)"},
			&cli.StringFlag{Name: "xks-config", Usage: "serve the AWS KMS XKS proxy API as the JSON `FILE` configures (prefixes, credentials, keys, quotas, mTLS)"},
			&cli.DurationFlag{Name: "drain-timeout", Value: 30e9, Usage: "how long in-flight requests may finish after SIGTERM"},
			storageFlag, storageMaxStaleFlag, replicaIDFlag,
		},
		Action:      serverRun,
		Subcommands: []*cli.Command{credentialsCommand(), migrateCommand()},
	}
}

func credentialsCommand() *cli.Command {
	principal := &cli.StringFlag{Name: "principal", Usage: "the principal (`service:NAME`, user:NAME) the access key authenticates as"}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON"}
	// --storage is a flag of every command under server, as of server
	// itself: storageDSN reads it in whichever position it was given.
	return &cli.Command{
		Name:  "credentials",
		Usage: "issue, list and revoke the SigV4 access keys the server accepts",
		Flags: []cli.Flag{storageFlag},
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "issue an access key for --principal; the secret is printed once",
				Flags: []cli.Flag{passphraseFileFlag, principal, jsonFlag, storageFlag}, Action: storeAction(0, 0, credentialsCreate)},
			{Name: "list", Usage: "list access keys (never their secrets) of --principal",
				Flags: []cli.Flag{principal, jsonFlag, storageFlag}, Action: storeAction(0, 0, credentialsList)},
			{Name: "revoke", Usage: "revoke the access key `ACCESS_KEY_ID`; a running server refuses it at once",
				Flags: []cli.Flag{storageFlag}, Action: storeAction(1, 1, credentialsRevoke)},
		},
	}
}

func credentialsCreate(c *cli.Context, st *keystore.Store, _ []string) error {
	if c.String("principal") == "" {
		return usagef("credentials create needs --principal")
	}
	cred, err := st.CreateCredential(c.Context, c.String("principal"))
	if err != nil {
		return err
	}
	return printNewCredential(c, cred)
}

// printNewCredential prints a new access key with its secret, once: as
// JSON with --json, else as text.
func printNewCredential(c *cli.Context, cred *keystore.Credential) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, cred)
	}
	_, err := fmt.Fprintf(c.App.Writer, "access key ID:     %s\nsecret access key: %s\nprincipal:         %s\n"+
		"The secret is shown only now.\n", cred.AccessKeyID, cred.Secret, cred.Principal)
	return err
}

func credentialsList(c *cli.Context, st *keystore.Store, _ []string) error {
	if c.String("principal") == "" {
		return usagef("credentials list needs --principal")
	}
	creds, err := st.ListCredentials(c.Context, c.String("principal"))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, creds)
	}
	for _, cr := range creds {
		if _, err := fmt.Fprintf(c.App.Writer, "%s  %s  %s\n", cr.AccessKeyID, cr.Principal, cr.Created.Format("2006-01-02T15:04:05Z")); err != nil {
			return err
		}
	}
	return nil
}

func credentialsRevoke(c *cli.Context, st *keystore.Store, a []string) error {
	return st.RevokeCredential(c.Context, a[0])
}
