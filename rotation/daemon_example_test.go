package rotation_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keystack/keystack/rotation"
)

// The shape of `keystack rotate daemon`: check every ten minutes, log JSON,
// serve metrics, and stop cleanly on SIGTERM or Ctrl-C.
func ExampleDaemon() {
	var store rotation.KeyStore // the opened key store
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	d := &rotation.Daemon{
		Runner:      rotation.Runner{Store: store, Log: rotation.NewLogger(os.Stderr, true, slog.LevelInfo)},
		Interval:    10 * time.Minute,
		MetricsAddr: "127.0.0.1:9464",
	}
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "keystack: error:", err)
		os.Exit(1)
	}
}

// The shape of `keystack rotate run` for cron: one pass, non-zero exit if
// any due key failed to rotate.
func ExampleRunner_RunOnce() {
	var store rotation.KeyStore // the opened key store
	r := &rotation.Runner{Store: store}
	rep, err := r.RunOnce(context.Background())
	for _, k := range rep.Rotated {
		fmt.Printf("rotated %s: version %d -> %d\n", k.Key, k.OldVersion, k.NewVersion)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keystack: error:", err)
		os.Exit(1)
	}
}
