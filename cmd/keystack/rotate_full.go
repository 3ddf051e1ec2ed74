//go:build !keystack_lite

package main

// rotate.go's `rotate run`, which links package rotation (its Runner's
// webhooks link net/http), and `rotate daemon`, which links
// internal/rotationd too; the lite build hands both to keystack-full
// (handoff_lite.go).

import (
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/rotationd"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/rotation"
)

func rotateDaemonAction(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	if c.Duration("interval") <= 0 {
		return usagef("rotate daemon: missing --interval D (D > 0)")
	}
	stopsGracefully(c)
	log, err := rotateLogger(c)
	if err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		// A stop signal ends the loop after the pass in flight. run already
		// cancels c.Context on these signals; NotifyContext makes the command
		// stop gracefully however it is run.
		ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		d := &rotationd.Daemon{
			Runner: &rotation.Runner{Store: st, Log: log}, Log: log,
			Interval: c.Duration("interval"), MetricsAddr: c.String("metrics-addr"),
			Lease: leaseOf(c), LeaseTTL: c.Duration(leaseTTLFlag.Name),
		}
		return d.Run(ctx)
	})
}

// rotateLogger is the logger --log-format asks for, on stderr.
func rotateLogger(c *cli.Context) (*slog.Logger, error) {
	switch f := c.String("log-format"); f {
	case "text", "json":
		return newLogger(c.App.ErrWriter, f == "json"), nil
	default:
		return nil, usagef("--log-format %q: want text or json", f)
	}
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
