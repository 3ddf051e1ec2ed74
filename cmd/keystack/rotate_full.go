//go:build !keystack_lite

package main

// rotate.go's `rotate daemon`, which links internal/rotationd; the lite
// build hands it to keystack-full (handoff_lite.go).

import (
	"os/signal"
	"syscall"

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
