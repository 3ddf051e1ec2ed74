package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/policy"
)

// The keystore's policy is a guardrail: against someone who can read the
// keystore files and knows the passphrase it enforces nothing (they can
// use the keys directly). Hard enforcement needs the keys behind KMS IAM
// or a key server.

func policyCommand() *cli.Command {
	input := &cli.StringFlag{Name: "input", Aliases: []string{"i"}, Required: true, Usage: "policy JSON `FILE` (- for stdin)"}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON"}
	return &cli.Command{
		Name:  "policy",
		Usage: "show, check, replace and simulate the access policy",
		Description: "The policy is an IAM-style JSON document (policy.json in the keystore). Without one\n" +
			"the keystore's owner may do everything and nobody else anything. The principal is\n" +
			"the OS user, or $KEYSTACK_PRINCIPAL when the keystore was created with\n" +
			"--trust-principal-env. The policy is a guardrail, not a wall: whoever can read the\n" +
			"keystore files and knows the passphrase can use the keys directly.",
		Subcommands: []*cli.Command{
			{Name: "validate", Usage: "check a policy document", Flags: []cli.Flag{input}, Action: policyValidateAction},
			{Name: "get", Usage: "print the policy in force", Flags: []cli.Flag{passphraseFileFlag, jsonFlag}, Action: policyGetAction},
			{Name: "put", Usage: "replace the policy (it may grant nothing you do not hold, and must leave you keystack:PutPolicy)",
				Flags: []cli.Flag{passphraseFileFlag, input, &cli.BoolFlag{Name: "bypass-lockout-safety-check",
					Usage: "accept a policy under which you may no longer replace the policy (undo with \"policy reset\")"}},
				Action: policyPutAction},
			{Name: "reset", Usage: "break-glass: restore the owner-only policy (needs the keystore passphrase, not the policy)",
				Description: "Replaces the policy with the default, under which the keystore's owner may do\n" +
					"everything and nobody else anything, whatever the policy in force says. It asks for\n" +
					"the keystore passphrase (a keystore without one can be reset only by its owner) and\n" +
					"records the reset, or the refused attempt, in the audit log. Through a key server\n" +
					"(--server) it needs keystack:ResetPolicy in the policy AND the caller on the\n" +
					"server's Unix socket as the owner of the keystore directory.",
				Flags: []cli.Flag{passphraseFileFlag}, Action: policyResetAction},
			{Name: "simulate", Usage: "evaluate a request against the policy in force",
				Flags: []cli.Flag{passphraseFileFlag, jsonFlag,
					&cli.StringFlag{Name: "principal", Required: true, Usage: "requesting `PRINCIPAL` (user:NAME, service:NAME)"},
					&cli.StringFlag{Name: "action", Required: true, Usage: "`ACTION` such as keystack:Decrypt"},
					&cli.StringFlag{Name: "resource", Required: true, Usage: "`RESOURCE`: key/NAME, policy or audit"},
					&cli.StringSliceFlag{Name: "context", Aliases: []string{"c"}, Usage: "encryption context pair `KEY=VALUE` (repeatable)"},
					&cli.StringFlag{Name: "source-ip", Usage: "source `IP` address"},
					&cli.IntFlag{Name: "key-version", Usage: "key version `N`"},
				}, Action: policySimulateAction},
		},
	}
}

// readPolicy reads and parses the policy named by --input; an invalid
// policy is a usage error (exit 2) naming the JSON path of the problem.
func readPolicy(c *cli.Context) (*policy.Policy, error) {
	if _, err := args(c, 0, 0); err != nil {
		return nil, err
	}
	r, done, err := openInput(c, c.String("input"))
	if err != nil {
		return nil, err
	}
	defer done()
	data, err := io.ReadAll(io.LimitReader(r, policy.MaxPolicySize+1))
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(data)
	if err != nil {
		return nil, &codedError{code: exitUsage, err: err}
	}
	return p, nil
}

func policyValidateAction(c *cli.Context) error {
	p, err := readPolicy(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "policy is valid: %d statement(s)\n", len(p.Statement))
	return nil
}

var policyGetAction = storeAction(0, 0, func(c *cli.Context, st *keystore.Store, _ []string) error {
	p, err := st.Gate().GetPolicy(c.Context)
	if err != nil {
		return err
	}
	return printPolicy(c, p)
})

// printPolicy prints policy get's output (local or server mode).
func printPolicy(c *cli.Context, p *policy.Policy) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, p)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Version %s, %d statement(s)\n", p.Version, len(p.Statement))
	for i, s := range p.Statement {
		sid := s.Sid
		if sid == "" {
			sid = fmt.Sprintf("Statement[%d]", i)
		}
		fmt.Fprintf(w, "%s: %s\n", sid, s.Effect)
		field(w, "Principal", s.Principal, false)
		field(w, "Principal", s.NotPrincipal, true)
		field(w, "Action", s.Action, false)
		field(w, "Action", s.NotAction, true)
		field(w, "Resource", s.Resource, false)
		field(w, "Resource", s.NotResource, true)
		for op, kv := range s.Condition {
			for k, v := range kv {
				fmt.Fprintf(w, "  Condition  %s %s: %s\n", op, k, strings.Join(v, ", "))
			}
		}
	}
	return nil
}

func field(w io.Writer, name string, v policy.Values, not bool) {
	if len(v) == 0 {
		return
	}
	if not {
		name = "Not" + name
	}
	fmt.Fprintf(w, "  %-10s %s\n", name, strings.Join(v, ", "))
}

func policyPutAction(c *cli.Context) error {
	return withStore(c, func(st *keystore.Store) error {
		p, err := readPolicy(c) // once the store is open: a lite build hands off there, before reading stdin
		if err != nil {
			return err
		}
		opts := policy.PutOptions{BypassLockoutSafetyCheck: c.Bool("bypass-lockout-safety-check")}
		if err := st.Gate().PutPolicy(c.Context, p, opts); err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "keystack: policy replaced (%d statement(s))\n", len(p.Statement))
		return nil
	})
}

var policyResetAction = storeAction(0, 0, func(c *cli.Context, st *keystore.Store, _ []string) error {
	owner, err := st.Gate().ResetPolicy(c.Context)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: policy reset: %s may do everything, nobody else anything\n", owner)
	return nil
})

// simulation is policy simulate's JSON output.
type simulation struct {
	Decision    policy.Effect `json:"decision"`
	Implicit    bool          `json:"implicit"`
	Statements  []string      `json:"statements"`
	Explanation []string      `json:"explanation"`
}

func policySimulateAction(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	req := policy.Request{Principal: c.String("principal"), Action: c.String("action"),
		Resource: c.String("resource"), KeyVersion: c.Int("key-version")}
	var err error
	if req.EncryptionContext, err = parseContext(c.StringSlice("context")); err != nil {
		return err
	}
	if ip := c.String("source-ip"); ip != "" {
		if req.SourceIP, err = netip.ParseAddr(ip); err != nil {
			return usagef("--source-ip: %v", err)
		}
	}
	if req.KeyVersion < 0 {
		return usagef("--key-version must not be negative")
	}
	if serverMode(c) {
		return remoteSimulate(c, req)
	}
	return withStore(c, func(st *keystore.Store) error {
		d, err := st.Gate().SimulatePolicy(c.Context, req)
		if err != nil {
			return err
		}
		return printSimulation(c, d)
	})
}

// printSimulation prints policy simulate's output (local or server mode).
func printSimulation(c *cli.Context, d policy.Decision) error {
	out := simulation{Decision: d.Effect, Implicit: d.Implicit, Statements: d.Matched, Explanation: d.Explanation}
	if out.Statements == nil {
		out.Statements = []string{}
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, out)
	}
	w := c.App.Writer
	switch {
	case d.Allowed():
		fmt.Fprintf(w, "Allow by %s\n", strings.Join(d.Matched, ", "))
	case d.Implicit:
		fmt.Fprintln(w, "Deny (implicit: no statement allows it)")
	default:
		fmt.Fprintf(w, "Deny by %s\n", strings.Join(d.Matched, ", "))
	}
	for _, line := range d.Explanation {
		fmt.Fprintf(w, "  %s\n", line)
	}
	return nil
}
