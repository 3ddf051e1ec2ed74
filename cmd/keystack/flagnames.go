package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// urfave/cli computes a flag's Names with a regexp replacement per name on
// every call, and before each command runs, runFlagActions asks IsSet of
// every flag, which calls Names on each flag before the one it looks up:
// quadratic in the flag count, 8% of an empty-file encrypt's CPU time
// (perf record; README, issue 15). fastFlagNames puts each value flag
// behind a wrapper that embeds it, so that every method but Names, and
// every interface urfave/cli asserts (help, completion, Get), stays the
// flag's own, and whose Names is computed once, without a regexp.
//
// The app's own flags and urfave/cli's help and version flags, which it
// appends to every command, are wrapped too. Left as they are: flag types
// not listed, and hidden bool flags, which urfave/cli's completion leaves
// out by asserting *cli.BoolFlag (they go last in their list instead).
// TestFastFlagNamesSameHelp checks that help and completion output do not
// change.

type stringFlag struct {
	*cli.StringFlag
	names []string
}

func (f *stringFlag) Names() []string { return f.names }

type boolFlag struct {
	*cli.BoolFlag
	names []string
}

func (f *boolFlag) Names() []string { return f.names }

type intFlag struct {
	*cli.IntFlag
	names []string
}

func (f *intFlag) Names() []string { return f.names }

type durationFlag struct {
	*cli.DurationFlag
	names []string
}

func (f *durationFlag) Names() []string { return f.names }

type uint64Flag struct {
	*cli.Uint64Flag
	names []string
}

func (f *uint64Flag) Names() []string { return f.names }

type stringSliceFlag struct {
	*cli.StringSliceFlag
	names []string
}

func (f *stringSliceFlag) Names() []string { return f.names }

func init() {
	cli.HelpFlag = fastNames(cli.HelpFlag)
	// Only --version: -v is the commands' verbosity flag.
	cli.VersionFlag = fastNames(&cli.BoolFlag{Name: "version", Usage: "print the version"})
}

// fastFlagNames wraps the flags of app and of its commands and
// subcommands (init wraps the help and version flags, which are global).
func fastFlagNames(app *cli.App) {
	for i, f := range app.Flags {
		app.Flags[i] = fastNames(f)
	}
	wrapCommandFlags(app.Commands)
}

// wrapCommandFlags also moves hidden bool flags, which stay unwrapped, to
// the end of each list: a lookup then meets them only after the others.
// They are in no help text, and bash completion leaves them out.
func wrapCommandFlags(cmds []*cli.Command) {
	for _, c := range cmds {
		flags := make([]cli.Flag, 0, len(c.Flags))
		var hidden []cli.Flag
		for _, f := range c.Flags {
			if bf, ok := f.(*cli.BoolFlag); ok && bf.Hidden {
				hidden = append(hidden, f)
				continue
			}
			flags = append(flags, fastNames(f))
		}
		c.Flags = append(flags, hidden...)
		wrapCommandFlags(c.Subcommands)
	}
}

func fastNames(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *cli.StringFlag:
		return &stringFlag{f, flagNames(f.Name, f.Aliases)}
	case *cli.BoolFlag:
		if !f.Hidden {
			return &boolFlag{f, flagNames(f.Name, f.Aliases)}
		}
	case *cli.IntFlag:
		return &intFlag{f, flagNames(f.Name, f.Aliases)}
	case *cli.DurationFlag:
		return &durationFlag{f, flagNames(f.Name, f.Aliases)}
	case *cli.Uint64Flag:
		return &uint64Flag{f, flagNames(f.Name, f.Aliases)}
	case *cli.StringSliceFlag:
		return &stringSliceFlag{f, flagNames(f.Name, f.Aliases)}
	}
	return f
}

// flagNames is cli.FlagNames without its regexp ("[, ]+.*" removed, for
// names without a line break): each name up to its first comma or space.
func flagNames(name string, aliases []string) []string {
	out := make([]string, 0, 1+len(aliases))
	for _, n := range append([]string{name}, aliases...) {
		if i := strings.IndexAny(n, ", "); i >= 0 {
			n = n[:i]
		}
		out = append(out, n)
	}
	return out
}
