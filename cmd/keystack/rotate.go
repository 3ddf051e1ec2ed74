package main

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/rotation"
)

func rotateCommand() *cli.Command {
	return &cli.Command{
		Name:  "rotate",
		Usage: "rotate the keys whose schedule (\"keystack key policy\") says they are due",
		Subcommands: []*cli.Command{
			{
				Name: "run", Usage: "make one pass: rotate every due key, retire superseded versions, then exit",
				Description: "Rotates every due key, then disables (retires) each decrypt-only version superseded\n" +
					"for more than its key's --retire-after. Exits 0 when every due key rotated and every\n" +
					"due version retired (or nothing was due) and non-zero when a rotation, its hook or a\n" +
					"retirement failed, for cron and Kubernetes CronJobs. Safe to run concurrently:\n" +
					"each key is re-checked under the keystore lock.",
				Flags: []cli.Flag{passphraseFileFlag,
					&cli.BoolFlag{Name: "json", Usage: "print the pass's report as JSON"},
					logFormatFlag()},
				Action: rotateRunAction,
			},
			{
				Name: "daemon", Usage: "check for due keys every --interval until SIGTERM or SIGINT",
				Description: "Makes a pass (as \"rotate run\": rotations, then retirements) at start and then\n" +
					"every --interval; a failed pass is logged and\n" +
					"counted, and the daemon goes on. On SIGTERM or SIGINT the pass in flight finishes\n" +
					"and the daemon exits 0. Logs go to stderr. With --storage, one daemon per key-server\n" +
					"replica: the one holding the rotation lease rotates, and its writes are fenced by it.",
				Flags: []cli.Flag{passphraseFileFlag,
					&cli.DurationFlag{Name: "interval", Usage: "how often to check for due keys"},
					&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus /metrics on `HOST:PORT`"},
					logFormatFlag(), storageFlag, replicaIDFlag, leaseTTLFlag},
				Action: rotateDaemonAction,
			},
		},
	}
}

func logFormatFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-format", Value: "text", Usage: "log lines on stderr: text or json"}
}

func rotateLogger(c *cli.Context) (*slog.Logger, error) {
	switch f := c.String("log-format"); f {
	case "text", "json":
		return newLogger(c.App.ErrWriter, f == "json"), nil
	default:
		return nil, usagef("--log-format %q: want text or json", f)
	}
}

// newLogger writes log records at level INFO and above to w: JSON lines
// when jsonFormat is set (for log collectors), logfmt-style text otherwise.
func newLogger(w io.Writer, jsonFormat bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if jsonFormat {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func rotateRunAction(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	log, err := rotateLogger(c)
	if err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		r := &rotation.Runner{Store: st, Log: log}
		rep, runErr := r.RunOnce(c.Context)
		if c.Bool("json") {
			if err := writeJSON(c.App.Writer, rep); err != nil {
				return err
			}
		} else {
			for _, k := range rep.Rotated {
				fmt.Fprintf(c.App.Writer, "rotated\t%s\tv%d -> v%d\n", k.Key, k.OldVersion, k.NewVersion)
			}
			for _, k := range rep.Failed {
				fmt.Fprintf(c.App.Writer, "failed\t%s\tv%d\t%s\n", k.Key, k.OldVersion, k.Reason)
			}
			printRetired(c.App.Writer, rep)
			fmt.Fprintf(c.App.Writer, "rotated %d, not due %d, failed %d, retired %d, retire failed %d\n",
				len(rep.Rotated), len(rep.NotDue), len(rep.Failed), len(rep.Retired), len(rep.RetireFailed))
		}
		return runErr
	})
}

// printRetired lists a pass's retirements: "retired KEY vN superseded T" and
// "retire-failed KEY vN REASON".
func printRetired(w io.Writer, rep *rotation.RunReport) {
	for _, r := range rep.Retired {
		fmt.Fprintf(w, "retired\t%s\tv%d\tsuperseded %s\n", r.Key, r.Version, r.Superseded.UTC().Format(time.RFC3339))
	}
	for _, r := range rep.RetireFailed {
		fmt.Fprintf(w, "retire-failed\t%s\tv%d\t%s\n", r.Key, r.Version, r.Reason)
	}
}
