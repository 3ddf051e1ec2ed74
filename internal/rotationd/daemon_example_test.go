package rotationd_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keystack/keystack/internal/rotationd"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/rotation"
)

// The shape of `keystack rotate daemon`: check every ten minutes, log JSON,
// serve metrics, and stop cleanly on SIGTERM or Ctrl-C.
func ExampleDaemon() {
	var store *keystore.Store // the opened key store
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	d := &rotationd.Daemon{
		Runner:      &rotation.Runner{Store: store, Log: log},
		Log:         log,
		Interval:    10 * time.Minute,
		MetricsAddr: "127.0.0.1:9464",
	}
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "keystack: error:", err)
		os.Exit(1)
	}
}
