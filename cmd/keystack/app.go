package main

import (
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// newApp builds the command tree. main and the tests both run it.
func newApp() *cli.App {
	app := &cli.App{
		Name:  "keystack",
		Usage: "envelope encryption in the AWS Encryption SDK message format",
		Description: "Encrypts and decrypts files as AWS Encryption SDK v2 messages under master keys\n" +
			"kept in a local keystore, AWS KMS or a PKCS#11 HSM.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "home", Usage: "keystore directory (default $KEYSTACK_HOME or the platform default)", EnvVars: []string{"KEYSTACK_HOME"}},
			storageFlag,
		},
		Commands:                  commands(),
		Reader:                    os.Stdin,
		Writer:                    os.Stdout,
		ErrWriter:                 os.Stderr,
		Version:                   versionString(),
		EnableBashCompletion:      true,
		DisableSliceFlagSeparator: true,
		// Errors are printed and mapped to exit codes by run, never by cli.
		ExitErrHandler: func(*cli.Context, error) {},
		Action:         unknownCommand,
		After:          closeAll,
	}
	addHandOff(app.Commands, "")    // handoff_lite.go; inside the server mode and its warning
	addServerMode(app.Commands, "") // remote.go
	addInterrupts(app.Commands, "") // interrupts.go; outermost: it asks serverMode
	setUsageErrors(app.Commands)
	app.OnUsageError = onUsageError
	fastFlagNames(app) // flagnames.go; after every flag is added
	cli.VersionPrinter = printVersion
	return app
}

// setUsageErrors makes bad flags on every command a usageError (exit 2).
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = unknownCommand
		}
		setUsageErrors(c.Subcommands)
	}
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	return &usageError{msg: suggestFlag(c, err)}
}

// unknownCommand runs for a command group given no or an unknown subcommand.
func unknownCommand(c *cli.Context) error {
	if c.Args().Present() {
		cmds := c.App.Commands
		if c.Command != nil && c.Command.Name != "" {
			cmds = c.Command.Subcommands
		}
		return usagef("unknown command %q%s", c.Args().First(), suggestCommand(cmds, c.Args().First()))
	}
	_ = cli.ShowSubcommandHelp(c)
	return usagef("missing command")
}

// args checks the number of positional arguments and returns them.
func args(c *cli.Context, min, max int) ([]string, error) {
	a := c.Args().Slice()
	switch {
	case len(a) < min:
		return nil, usagef("%s: missing argument (usage: %s %s)", c.Command.HelpName, c.Command.HelpName, c.Command.ArgsUsage)
	case len(a) > max:
		return nil, usagef("%s: unexpected argument %q", c.Command.HelpName, a[max])
	}
	return a, nil
}

// permuteArgs moves each command's flags before its positional arguments,
// so that "keystack key create NAME --description D" parses: urfave/cli v2,
// like package flag, stops at the first positional argument. Everything
// after "--" stays positional.
func permuteArgs(app *cli.App, argv []string) []string {
	if len(argv) == 0 || argv[len(argv)-1] == "--generate-bash-completion" {
		return argv // cli completes the words as the shell has them
	}
	out := []string{argv[0]}
	cmds, flags := app.Commands, app.Flags
	var opts, pos []string
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case len(pos) == 0 && (a == "help" || a == "h"):
			// cli's own help command: leave the rest as given.
			return append(append(out, opts...), argv[i:]...)
		case a == "--":
			pos = append(pos, argv[i+1:]...)
			i = len(argv)
		case strings.HasPrefix(a, "-") && a != "-":
			opts = append(opts, a)
			if takesValue(flags, a) && i+1 < len(argv) {
				opts = append(opts, argv[i+1])
				i++
			}
		case len(pos) == 0 && findCommand(cmds, a) != nil:
			sub := findCommand(cmds, a)
			out = append(append(out, opts...), a)
			opts, cmds, flags = nil, sub.Subcommands, sub.Flags
		case len(pos) == 0 && len(cmds) > 0:
			// Not a command where one is expected: cli reports it as
			// unknown, with the rest left as given.
			return append(append(out, opts...), argv[i:]...)
		default:
			pos = append(pos, a)
		}
	}
	out = append(out, opts...)
	if len(pos) > 0 {
		out = append(append(out, "--"), pos...)
	}
	return out
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether arg names a flag that needs a separate value.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				df, ok := f.(cli.DocGenerationFlag) // a bool flag takes no value
				return !ok || df.TakesValue()
			}
		}
	}
	return false
}

const closersKey = "closers"

// closeOnExit registers resources that the app closes when the command
// ends, whether it succeeded or not.
func closeOnExit(c *cli.Context, cs ...io.Closer) {
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	list, _ := c.App.Metadata[closersKey].([]io.Closer)
	c.App.Metadata[closersKey] = append(list, cs...)
}

// closeAll is the app's After hook: it closes what closeOnExit registered,
// newest first. The command's work is done by then, so a failure to close
// is a warning, not a failed command.
func closeAll(c *cli.Context) error {
	list, _ := c.App.Metadata[closersKey].([]io.Closer)
	delete(c.App.Metadata, closersKey)
	for i := len(list) - 1; i >= 0; i-- {
		if err := list[i].Close(); err != nil {
			warnf(c.App.ErrWriter, "closing a key backend: %v", err)
		}
	}
	return nil
}
