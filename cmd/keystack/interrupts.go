package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/fsx"
)

// interruptWatch turns SIGINT, SIGTERM and SIGHUP (the terminal closed)
// into the cancellation of the running command once armed: the command
// then fails, its deferred cleanup removes partial outputs and closes the
// store, and runApp returns 130, 143 or 129.
//
// Arming costs the Go runtime two more threads and a thread hand-off per
// signal, about 0.5 ms of CPU: a tenth of an empty-file encrypt. So every
// command arms it before it runs except encrypt and decrypt on the local
// store (lazyInterrupts), which arm it only before they do something an
// interrupt must clean up or may wait on: a file output, reading stdin or
// anything but a small regular file, prompting for a passphrase, several
// inputs. Until then a signal ends the process as it ends any program;
// there is nothing to remove, and a shell reports the same 130, 143 or 129.
type interruptWatch struct {
	once     sync.Once
	armed    atomic.Bool
	cancel   context.CancelFunc
	errw     io.Writer
	sigs     chan os.Signal
	done     chan struct{}
	caught   atomic.Int32 // the exit code of the signal caught, 0 before
	graceful atomic.Bool  // the command stops by itself on a signal (stopsGracefully)
	hup      atomic.Bool  // the command handles SIGHUP itself (hupReloads)
}

// lazyInterrupts are the commands that arm the watch themselves
// (armInterrupts) rather than before they run.
var lazyInterrupts = map[string]bool{"encrypt": true, "decrypt": true}

// lazyInterruptMax is the largest regular-file input encrypt and decrypt
// process without arming the watch: a few milliseconds of work.
const lazyInterruptMax = 1 << 20

// The App.Metadata key of the running command's interruptWatch.
const interruptsKey = "keystack.interrupts"

func newInterruptWatch(cancel context.CancelFunc, errw io.Writer) *interruptWatch {
	return &interruptWatch{cancel: cancel, errw: errw, done: make(chan struct{})}
}

// arm starts watching; it is idempotent.
func (w *interruptWatch) arm() {
	w.once.Do(func() {
		w.sigs = make(chan os.Signal, 1)
		signal.Notify(w.sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		w.armed.Store(true)
		go w.watch()
	})
}

// stop ends the watch; runApp calls it once the command returned.
func (w *interruptWatch) stop() {
	close(w.done)
	if w.armed.Load() {
		signal.Stop(w.sigs)
	}
}

// watch waits for a stopping signal and cancels the command. A command
// blocked in a read (a terminal, a pipe) may never see the cancellation:
// after interruptGrace the watch cleans up for it and exits.
func (w *interruptWatch) watch() {
	sig, ok := w.next()
	if !ok {
		return
	}
	code := exitInterrupted
	if s, ok := sig.(syscall.Signal); ok && s != syscall.SIGINT {
		code = 128 + int(s)
	}
	w.caught.Store(int32(code))
	w.cancel()
	if w.graceful.Load() {
		return
	}
	select {
	case <-w.done:
	case <-time.After(interruptGrace):
		fsx.RemovePending()
		printError(w.errw, errInterrupted)
		os.Exit(code)
	}
}

// next waits for a signal that stops the command: SIGHUP does not while
// the command handles it (hupReloads).
func (w *interruptWatch) next() (os.Signal, bool) {
	for {
		select {
		case sig := <-w.sigs:
			if sig == syscall.SIGHUP && w.hup.Load() {
				continue
			}
			return sig, true
		case <-w.done:
			return nil, false
		}
	}
}

// interruptsOf returns the running command's watch, or nil for an App
// that runApp does not run (some tests).
func interruptsOf(c *cli.Context) *interruptWatch {
	w, _ := c.App.Metadata[interruptsKey].(*interruptWatch)
	return w
}

// armInterrupts arms the running command's watch.
func armInterrupts(c *cli.Context) {
	if w := interruptsOf(c); w != nil {
		w.arm()
	}
}

// addInterrupts arms the watch before every command's action but the
// lazy ones run locally.
func addInterrupts(cmds []*cli.Command, prefix string) {
	for _, cmd := range cmds {
		path := strings.TrimSpace(prefix + " " + cmd.Name)
		addInterrupts(cmd.Subcommands, path)
		action := cmd.Action
		if action == nil {
			continue
		}
		lazy := lazyInterrupts[path]
		cmd.Action = func(c *cli.Context) error {
			if !lazy || serverMode(c) {
				armInterrupts(c)
			}
			return action(c)
		}
	}
}
