//go:build !keystack_lite

package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/client"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

func jsonUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("keystack server: malformed answer: %v", err)
	}
	return nil
}

func remotePolicyGet(c *cli.Context, cl *client.Client) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	doc, err := cl.GetPolicy(c.Context)
	if err != nil {
		return err
	}
	p, err := policy.Parse(doc)
	if err != nil {
		return fmt.Errorf("keystack server: GetPolicy: %w", err)
	}
	return printPolicy(c, p)
}

func remotePolicyPut(c *cli.Context, cl *client.Client) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	p, err := readPolicy(c) // validated here, and again by the server
	if err != nil {
		return err
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := cl.PutPolicy(c.Context, doc, c.Bool("bypass-lockout-safety-check")); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: policy replaced on the server (%d statement(s))\n", len(p.Statement))
	return nil
}

// remoteSimulate is policy simulate in server mode; req is checked.
func remoteSimulate(c *cli.Context, req policy.Request) error {
	if req.SourceIP.IsValid() {
		return usagef("policy simulate --source-ip does not work through a key server")
	}
	return withClient(c, func(c *cli.Context, cl *client.Client) error {
		d, err := cl.SimulatePolicy(c.Context, client.SimulateRequest{Principal: req.Principal, Action: req.Action,
			Resource: req.Resource, KeyVersion: req.KeyVersion, EncryptionContext: req.EncryptionContext})
		if err != nil {
			return err
		}
		return printSimulation(c, policy.Decision{Effect: policy.Effect(d.Decision), Implicit: d.Implicit, Matched: d.Statements})
	})
}

func remoteCredCreate(c *cli.Context, cl *client.Client) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	if c.String("principal") == "" {
		return usagef("credentials create needs --principal")
	}
	cred, err := cl.CreateCredentials(c.Context, c.String("principal"))
	if err != nil {
		return err
	}
	// client.Credential is keystore.Credential's wire twin: same fields, same JSON.
	kc := keystore.Credential(cred)
	return printNewCredential(c, &kc)
}

func remoteCredList(c *cli.Context, cl *client.Client) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	if c.String("principal") == "" {
		return usagef("credentials list needs --principal")
	}
	creds, err := cl.ListCredentials(c.Context, c.String("principal"))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, creds)
	}
	for _, cr := range creds {
		if _, err := fmt.Fprintf(c.App.Writer, "%s  %s  %s\n", cr.AccessKeyID, cr.Principal, cr.Created.Format(time.RFC3339)); err != nil {
			return err
		}
	}
	return nil
}

func remoteCredRevoke(c *cli.Context, cl *client.Client) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	if err := cl.RevokeCredentials(c.Context, a[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: revoked %s\n", a[0])
	return nil
}

// remoteEncrypt is encrypt in server mode: the data keys come from the
// server, the body is encrypted here.
func remoteEncrypt(c *cli.Context, cl *client.Client) error {
	opts, keys, err := encryptArgs(c, checkRemoteCryptFlags)
	if err != nil {
		return err
	}
	kr, err := cl.EncryptKeyring(c.Context, keys, storeCache(c))
	if err != nil {
		return err
	}
	job := &crypter{c: c, keys: keys, encrypt: true, kr: encryptErrors{kr}, eopts: opts}
	return job.runAll()
}

// remoteDecrypt is decrypt in server mode: without -k every aws-kms EDK
// is sent to the server, which refuses keys it does not hold.
func remoteDecrypt(c *cli.Context, cl *client.Client) error {
	opts, needKeys, err := decryptArgs(c, checkRemoteCryptFlags)
	if err != nil {
		return err
	}
	keys := c.StringSlice("key")
	kr, err := cl.DecryptKeyring(c.Context, keys, storeCache(c))
	if err != nil {
		return err
	}
	job := &crypter{c: c, keys: keys, kr: kr, dopts: opts, runState: runState{needKeys: needKeys}}
	return job.runAll()
}

// checkRemoteCryptFlags refuses the local-backend flags in server mode,
// where they would mean nothing.
func checkRemoteCryptFlags(c *cli.Context) error {
	if err := checkCacheFlags(c); err != nil {
		return err
	}
	for _, f := range []string{"grant-token", "discovery", "discovery-account", "discovery-partition", "passphrase-file"} {
		if c.IsSet(f) {
			return usagef("--%s is for local keystores and AWS KMS; with --server the server holds the keys", f)
		}
	}
	return nil
}

// remoteAuditShow is audit show in server mode; f is checked.
func remoteAuditShow(c *cli.Context, f audit.Filter) error {
	return withClient(c, func(c *cli.Context, cl *client.Client) error {
		recs, truncated, err := cl.ShowAudit(c.Context, client.AuditQuery{Principal: f.Principal, Key: f.Key,
			Action: f.Action, Since: f.Since, Until: f.Until})
		if err != nil {
			return err
		}
		if truncated {
			warnf(c.App.ErrWriter, "only the %d most recent matching records (the server's limit); narrow with --since or --principal", len(recs))
		}
		if c.Bool("json") {
			if recs == nil {
				recs = []audit.Entry{}
			}
			return writeJSON(c.App.Writer, recs)
		}
		for _, e := range recs {
			fmt.Fprintln(c.App.Writer, formatEntry(e))
		}
		return nil
	})
}

// remotePolicyReset is the server's break-glass reset: only the keystore
// directory's owner on the Unix socket, with keystack:ResetPolicy.
func remotePolicyReset(c *cli.Context, cl *client.Client) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	if c.IsSet("passphrase-file") {
		warnf(c.App.ErrWriter, "--passphrase-file is not sent to a key server (it decides by the policy and the Unix socket's peer)")
	}
	owner, err := cl.ResetPolicy(c.Context)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: policy reset on the server: %s may do everything, nobody else anything\n", owner)
	return nil
}

func remoteAuditCheckpoint(c *cli.Context, cl *client.Client) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	a, err := cl.AuditCheckpoint(c.Context)
	if err != nil {
		return err
	}
	return printCheckpoint(c, a)
}
