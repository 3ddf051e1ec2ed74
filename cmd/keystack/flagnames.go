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
// Left as they are: flag types not listed, and hidden bool flags and bool
// flags without default text, which urfave/cli treats by asserting
// *cli.BoolFlag. TestFastFlagNamesSameHelp checks that help and completion
// output do not change.

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

// fastFlagNames wraps the flags of cmds and their subcommands.
func fastFlagNames(cmds []*cli.Command) {
	for _, c := range cmds {
		for i, f := range c.Flags {
			c.Flags[i] = fastNames(f)
		}
		fastFlagNames(c.Subcommands)
	}
}

func fastNames(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *cli.StringFlag:
		return &stringFlag{f, flagNames(f.Name, f.Aliases)}
	case *cli.BoolFlag:
		if !f.Hidden && !f.DisableDefaultText {
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
