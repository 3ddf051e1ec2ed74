package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/fsx"
)

func main() {
	os.Exit(start(os.Args))
}

// start takes the lite build's hand-off marker (handoff.go), makes the
// process unable to dump core, before anything reads a passphrase or key
// material (a core dump, e.g. under GOTRACEBACK=crash, would hold them),
// then runs argv.
func start(argv []string) int {
	takeHandOffMarker()
	if err := disableCoreDumps(); err != nil {
		warnf(os.Stderr, "could not disable core dumps: %v", err)
	}
	return run(argv)
}

// interruptGrace is how long an interrupted command may take to clean up
// on its own before the signal handler removes its temporary files and
// exits; a variable so that tests, whose commands block in a read of a
// pipe, need not wait the whole of it.
var interruptGrace = 3 * time.Second

// run runs the CLI with argv and returns the exit code. SIGINT, SIGTERM and
// SIGHUP (the terminal closed) cancel the command's context; the command
// then fails, its deferred cleanup removes partial outputs, and run returns
// 130, 143 or 129. A command that stops gracefully on a signal (rotate
// daemon) says so with stopsGracefully; its own result is then the exit
// code.
func run(argv []string) int { return runApp(newApp(), argv) }

// The App.Metadata keys of the long-running commands' marks (stopsGracefully
// and hupReloads, server_full.go), which runApp reads.
const (
	gracefulKey = "keystack.graceful-stop"
	hupKey      = "keystack.hup-reloads"
)

// nextStop waits for a signal that stops the command: SIGHUP does not
// while the command handles it (hupReloads).
func nextStop(sigs <-chan os.Signal, hup *atomic.Bool, done <-chan struct{}) (os.Signal, bool) {
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP && hup.Load() {
				continue
			}
			return sig, true
		case <-done:
			return nil, false
		}
	}
}

// runApp runs app with argv; see run.
func runApp(app *cli.App, argv []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	var caught atomic.Int32
	graceful := new(atomic.Bool)
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata[gracefulKey] = graceful
	hup := new(atomic.Bool)
	app.Metadata[hupKey] = hup
	done := make(chan struct{})
	defer close(done)
	go func() {
		if sig, ok := nextStop(sigs, hup, done); ok {
			code := exitInterrupted
			if s, ok := sig.(syscall.Signal); ok && s != syscall.SIGINT {
				code = 128 + int(s)
			}
			caught.Store(int32(code))
			cancel()
			if graceful.Load() {
				return
			}
			// A command blocked in a read (a terminal, a pipe) may never see
			// the cancellation: clean up for it and exit.
			select {
			case <-done:
			case <-time.After(interruptGrace):
				fsx.RemovePending()
				printError(app.ErrWriter, errInterrupted)
				os.Exit(code)
			}
		}
	}()

	var err error
	if osUserNeedsFull() { // before argfiles: keystack-full expands their ~ with NSS
		err = errNeedsFull
	} else if argv, err = expandArgfiles(argv); err == nil {
		err = app.RunContext(ctx, permuteArgs(app, argv))
	}
	if code := caught.Load(); code != 0 && !graceful.Load() {
		fsx.RemovePending()
		printError(app.ErrWriter, errInterrupted)
		return int(code)
	}
	if errors.Is(err, errNeedsFull) {
		err = handOff(argv) // after the command's cleanup; returns only on failure
	}
	if err != nil {
		printError(app.ErrWriter, err)
	}
	return exitCode(err)
}
