package main

import (
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"
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

// newLogger writes log records at level INFO and above to w: JSON lines
// when jsonFormat is set (for log collectors), logfmt-style text otherwise.
func newLogger(w io.Writer, jsonFormat bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if jsonFormat {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
