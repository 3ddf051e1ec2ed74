package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/keystore"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "verify and search the audit log",
		Description: "Every access decision is a record in audit.log, hash-chained and sealed by\n" +
			"HMAC checkpoints under a key kept in keystore.json. The log is tamper-evident\n" +
			"against anyone who cannot read keystore.json; whoever can read it could forge it.",
		Subcommands: []*cli.Command{
			{Name: "verify", Usage: "check the hash chain and checkpoints", Flags: []cli.Flag{passphraseFileFlag}, Action: auditVerifyAction},
			{Name: "show", Usage: "print records, oldest first",
				Flags: []cli.Flag{passphraseFileFlag,
					&cli.StringFlag{Name: "principal", Usage: "only records of `PRINCIPAL`"},
					&cli.StringFlag{Name: "key", Usage: "only records about key `NAME`"},
					&cli.StringFlag{Name: "action", Usage: "only records of `ACTION` (keystack:Decrypt)"},
					&cli.StringFlag{Name: "since", Usage: "only records at or after `TIME` (RFC 3339, or a duration ago such as 24h)"},
					&cli.StringFlag{Name: "until", Usage: "only records before `TIME` (RFC 3339, or a duration ago)"},
					&cli.BoolFlag{Name: "json", Usage: "print a JSON array of records"},
				}, Action: auditShowAction},
		},
	}
}

var auditVerifyAction = storeAction(0, 0, func(c *cli.Context, st *keystore.Store, _ []string) error {
	rep, err := st.VerifyAudit(c.Context)
	var te *audit.TamperError
	if errors.As(err, &te) {
		return &codedError{code: exitAuth, err: fmt.Errorf("audit log is not intact after %d good record(s): first bad record at line %d: %w", rep.Records, te.Line, err)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "audit log OK: %d records, %d checkpoints, head %s\n", rep.Records, rep.Checkpoints, rep.Head)
	return nil
})

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("--%s %q: want an RFC 3339 time or a duration such as 24h", flag, s)
}

func auditShowAction(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	f := audit.Filter{Principal: c.String("principal"), Key: c.String("key"), Action: c.String("action")}
	var err error
	now := time.Now()
	if f.Since, err = parseWhen("since", c.String("since"), now); err != nil {
		return err
	}
	if f.Until, err = parseWhen("until", c.String("until"), now); err != nil {
		return err
	}
	st, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := st.AuditLog(c.Context)
	if err != nil {
		return err
	}
	defer r.Close()
	entries := []audit.Entry{}
	for e, err := range audit.Query(r, f) {
		if err != nil {
			return err
		}
		if c.Bool("json") {
			entries = append(entries, e)
			continue
		}
		fmt.Fprintln(c.App.Writer, formatEntry(e))
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, entries)
	}
	return nil
}

// formatEntry renders one record on a line: time, seq, principal, action,
// resource, outcome, and for denials the recorded reason.
func formatEntry(e audit.Entry) string {
	res := e.Resource
	if e.KeyVersion > 0 {
		res += "/v" + strconv.Itoa(e.KeyVersion)
	}
	outcome := e.Decision
	if outcome == "" {
		outcome = e.Outcome
	}
	fields := []string{e.Time, "#" + strconv.FormatUint(e.Seq, 10), e.Principal, e.Action, res, outcome}
	if len(e.Statements) > 0 {
		fields = append(fields, "by="+strings.Join(e.Statements, ","))
	}
	if e.Reason != "" {
		fields = append(fields, "reason="+strconv.Quote(e.Reason))
	}
	return strings.Join(fields, "  ")
}
