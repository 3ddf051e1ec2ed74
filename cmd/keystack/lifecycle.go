package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// withSubcommands adds subs to the command group c.
func withSubcommands(c *cli.Command, subs ...*cli.Command) *cli.Command {
	c.Subcommands = append(c.Subcommands, subs...)
	return c
}

// keyLifecycleCommands are the "key" subcommands that change key versions.
func keyLifecycleCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name: "rotate", Usage: "make a new primary version of a key now", ArgsUsage: "NAME",
			Description: "Adds a version with fresh material and makes it primary; the old primary becomes\n" +
				"decrypt-only, so existing messages still decrypt. Run \"keystack rewrap\" to move\n" +
				"messages to the new version.",
			Flags: []cli.Flag{passphraseFileFlag,
				&cli.StringFlag{Name: "reason", Usage: "why, recorded in the key's history"}},
			Action: keyRotateAction,
		},
	}
}

func keyRotateAction(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	st, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	reason := c.String("reason")
	if reason == "" {
		reason = "on demand"
	}
	k, err := st.RotateKey(c.Context, a[0], reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: rotated key %s to v%d\n", a[0], k.Primary)
	return nil
}
