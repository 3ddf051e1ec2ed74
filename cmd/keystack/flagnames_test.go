package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// unwrapFlags undoes fastFlagNames.
func unwrapFlags(cmds []*cli.Command) {
	for _, c := range cmds {
		for i, f := range c.Flags {
			switch w := f.(type) {
			case *stringFlag:
				c.Flags[i] = w.StringFlag
			case *boolFlag:
				c.Flags[i] = w.BoolFlag
			case *intFlag:
				c.Flags[i] = w.IntFlag
			case *durationFlag:
				c.Flags[i] = w.DurationFlag
			case *uint64Flag:
				c.Flags[i] = w.Uint64Flag
			case *stringSliceFlag:
				c.Flags[i] = w.StringSliceFlag
			}
		}
		unwrapFlags(c.Subcommands)
	}
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
		unwrapFlags(app.Commands)
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
	for _, p := range commandPaths(app.Commands, nil) {
		for _, argv := range [][]string{append(slices.Clone(p), "--help"), append(slices.Clone(p), "-", "--generate-bash-completion")} {
			if a, b := output(t, true, argv...), output(t, false, argv...); a != b {
				t.Errorf("keystack %s: output differs:\n%s\n----\n%s", strings.Join(argv, " "), a, b)
			}
		}
	}
}
