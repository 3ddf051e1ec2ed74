package main

import (
	"context"
	"errors"
	"os"
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
// SIGHUP (the terminal closed) cancel the command's context once its
// interruptWatch is armed (interrupts.go); the command then fails, its
// deferred cleanup removes partial outputs, and run returns 130, 143 or
// 129. A command that stops gracefully on a signal (rotate daemon) says so
// with stopsGracefully; its own result is then the exit code.
func run(argv []string) int { return runApp(newApp(), argv) }

// runApp runs app with argv; see run.
func runApp(app *cli.App, argv []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newInterruptWatch(cancel, app.ErrWriter)
	defer w.stop()
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata[interruptsKey] = w

	var err error
	if osUserNeedsFull() { // before argfiles: keystack-full expands their ~ with NSS
		err = errNeedsFull
	} else if argv, err = expandArgfiles(argv); err == nil {
		err = app.RunContext(ctx, permuteArgs(app, argv))
	}
	if code := w.caught.Load(); code != 0 && !w.graceful.Load() {
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
