package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// unwrapFlag undoes fastNames.
func unwrapFlag(f cli.Flag) cli.Flag {
	switch w := f.(type) {
	case *stringFlag:
		return w.StringFlag
	case *boolFlag:
		return w.BoolFlag
	case *intFlag:
		return w.IntFlag
	case *durationFlag:
		return w.DurationFlag
	case *uint64Flag:
		return w.Uint64Flag
	case *stringSliceFlag:
		return w.StringSliceFlag
	}
	return f
}

// unwrapFlags undoes fastFlagNames.
func unwrapFlags(app *cli.App) {
	var unwrap func(cmds []*cli.Command)
	unwrap = func(cmds []*cli.Command) {
		for _, c := range cmds {
			for i, f := range c.Flags {
				c.Flags[i] = unwrapFlag(f)
			}
			unwrap(c.Subcommands)
		}
	}
	for i, f := range app.Flags {
		app.Flags[i] = unwrapFlag(f)
	}
	unwrap(app.Commands)
}

// commandPaths lists every command as its argv words.
func commandPaths(cmds []*cli.Command, prefix []string) [][]string {
	var out [][]string
	for _, c := range cmds {
		p := append(slices.Clone(prefix), c.Name)
		out = append(append(out, p), commandPaths(c.Subcommands, p)...)
	}
	return out
}

// output runs argv on a fresh app (wrapped or not) and returns its stdout.
func output(t *testing.T, wrapped bool, argv ...string) string {
	t.Helper()
	app := newApp()
	if !wrapped {
		unwrapFlags(app)
		defer func(h, v cli.Flag) { cli.HelpFlag, cli.VersionFlag = h, v }(cli.HelpFlag, cli.VersionFlag)
		cli.HelpFlag, cli.VersionFlag = unwrapFlag(cli.HelpFlag), unwrapFlag(cli.VersionFlag)
	}
	var b bytes.Buffer
	app.Writer, app.ErrWriter = &b, &b
	app.Run(append([]string{"keystack"}, argv...))
	return b.String()
}

// TestFastFlagNamesSameHelp: with the flag wrappers of fastFlagNames,
// every command's help, bash completion of its flags and the fish
// completion script are byte for byte what urfave/cli's own flags give,
// and every wrapped flag has urfave/cli's names.
func TestFastFlagNamesSameHelp(t *testing.T) {
	app := newApp()
	wrapped := 0
	var check func(cmds []*cli.Command)
	check = func(cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				var inner cli.Flag
				switch w := f.(type) {
				case *stringFlag:
					inner = w.StringFlag
				case *boolFlag:
					inner = w.BoolFlag
				case *intFlag:
					inner = w.IntFlag
				case *durationFlag:
					inner = w.DurationFlag
				case *uint64Flag:
					inner = w.Uint64Flag
				case *stringSliceFlag:
					inner = w.StringSliceFlag
				default:
					continue
				}
				wrapped++
				if !slices.Equal(f.Names(), inner.Names()) {
					t.Errorf("%s: wrapped names %q, urfave/cli's %q", c.Name, f.Names(), inner.Names())
				}
			}
			check(c.Subcommands)
		}
	}
	check(app.Commands)
	if wrapped < 100 {
		t.Fatalf("only %d flags wrapped", wrapped)
	}
	if a, b := output(t, true, "completion", "fish"), output(t, false, "completion", "fish"); a != b || !strings.Contains(a, "-l metadata-output") {
		t.Errorf("fish completion differs or is empty:\n%s\n----\n%s", a, b)
	}
	for _, p := range append(commandPaths(app.Commands, nil), []string{}) {
		for _, argv := range [][]string{append(slices.Clone(p), "--help"), append(slices.Clone(p), "-", "--generate-bash-completion")} {
			if a, b := output(t, true, argv...), output(t, false, argv...); a != b {
				t.Errorf("keystack %s: output differs:\n%s\n----\n%s", strings.Join(argv, " "), a, b)
			}
		}
	}
}
