package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "verify, anchor and search the audit log",
		Description: "Every access decision is a record in audit.log, chained with HMAC-SHA256 under\n" +
			"the audit key kept in keystore.json: without that key no record can be edited,\n" +
			"inserted, removed from the middle or appended. audit.anchor, beside the log (a\n" +
			"row of the database with --storage), keeps an anchor: the last entry known to be\n" +
			"on disk, advanced when a command ends. A log cut below it, deleted or replaced by\n" +
			"an older copy, or a damaged anchor, is found, and the store then refuses every\n" +
			"operation until \"audit reset-anchor --accept-loss\". Older copies of the log and\n" +
			"its anchor put back together are not, and whoever can read keystore.json holds\n" +
			"the key and could rewrite the whole log: against both, keep \"audit checkpoint\n" +
			"--json\" output elsewhere and pass it to \"verify --anchor\".",
		Subcommands: []*cli.Command{
			{Name: "verify", Usage: "check every record, checkpoint and anchor (writes nothing but its own access record)",
				Flags: []cli.Flag{passphraseFileFlag,
					&cli.StringSliceFlag{Name: "anchor", Usage: "also require the head exported by \"audit checkpoint --json\" in `FILE`"},
				}, Action: auditVerifyAction},
			{Name: "checkpoint", Usage: "write a checkpoint and print its signed head, to keep outside this host",
				Flags:  []cli.Flag{passphraseFileFlag, &cli.BoolFlag{Name: "json", Usage: "print the head as JSON, the format --anchor reads"}},
				Action: auditCheckpointAction},
			{Name: "reset-anchor", Usage: "after a damaged log was investigated: set it aside and start a new one (needs the passphrase)",
				Flags:  []cli.Flag{passphraseFileFlag, &cli.BoolFlag{Name: "accept-loss", Usage: "required: the records the damaged log lost stay lost"}},
				Action: auditResetAction},
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
	anchors, err := readAnchors(c.StringSlice("anchor"))
	if err != nil {
		return err
	}
	rep, err := st.Gate().VerifyAudit(c.Context, anchors...)
	var te *audit.TamperError
	if errors.As(err, &te) {
		where := fmt.Sprintf("first bad record at line %d", te.Line)
		switch {
		case te.AnchorLost:
			where = "the anchor that bounds its end is missing or damaged, so records may have been cut from its end"
		case te.Line == 0:
			where = fmt.Sprintf("records missing from entry %d on", te.Seq)
		}
		return &codedError{code: exitAuth, err: fmt.Errorf("audit log is not intact after %d good record(s): %s: %w", rep.Records, where, err)}
	}
	if err != nil {
		return err
	}
	if rep.TornBytes > 0 {
		warnf(c.App.ErrWriter, "the log ends with %d bytes of an incomplete record (an append that failed, whose operation was refused); the next command removes them", rep.TornBytes)
	}
	fmt.Fprintf(c.App.Writer, "audit log OK: %d records, %d checkpoints, head %s\n", rep.Records, rep.Checkpoints, rep.Head)
	return nil
})

// readAnchors reads the heads "audit checkpoint --json" exported.
func readAnchors(paths []string) ([]audit.Anchor, error) {
	var out []audit.Anchor
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--anchor: %w", err)
		}
		var a audit.Anchor
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil || a.Seq == 0 {
			return nil, usagef("--anchor %s: not a head printed by \"keystack audit checkpoint --json\"", p)
		}
		out = append(out, a)
	}
	return out, nil
}

var auditCheckpointAction = storeAction(0, 0, func(c *cli.Context, st *keystore.Store, _ []string) error {
	a, err := st.Gate().AuditCheckpoint(c.Context)
	if err != nil {
		return err
	}
	return printCheckpoint(c, a)
})

// printCheckpoint prints the anchor audit checkpoint made, as JSON with
// --json.
func printCheckpoint(c *cli.Context, a audit.Anchor) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, a)
	}
	fmt.Fprintf(c.App.Writer, "checkpoint: entry %d, head %s, offset %d, time %s, mac %s\n", a.Seq, a.Head, a.Offset, a.Time, a.MAC)
	return nil
}

var auditResetAction = storeAction(0, 0, func(c *cli.Context, st *keystore.Store, _ []string) error {
	if !c.Bool("accept-loss") {
		return usagef("reset-anchor abandons the records a damaged audit log lost: run \"keystack audit verify\" first, then pass --accept-loss")
	}
	moved, err := st.Gate().ResetAuditAnchor(c.Context)
	if err != nil {
		return err
	}
	if moved != "" {
		fmt.Fprintf(c.App.ErrWriter, "keystack: the damaged log was kept as %s\n", moved)
	}
	fmt.Fprintln(c.App.Writer, "audit anchor reset: a new log was started, its first record says so")
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
	if serverMode(c) {
		return remoteAuditShow(c, f)
	}
	return withStore(c, func(st *keystore.Store) error {
		r, err := st.Gate().AuditLog(c.Context)
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
	})
}

// formatEntry renders one record on a line: time, seq, principal, action,
// resource, outcome, and for denials the recorded reason.
func formatEntry(e audit.Entry) string {
	res := e.Resource
	if e.KeyVersion > 0 {
		res = keyring.VersionedKeyName(res, e.KeyVersion)
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
