package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/inventory"
)

func inventoryCommand() *cli.Command {
	return &cli.Command{
		Name:      "inventory",
		Usage:     "count messages per master key version (headers only, no key needed)",
		ArgsUsage: "PATH...",
		Description: "Walks each PATH (files and directory trees, symbolic links not followed) and counts,\n" +
			"for every master key version named in an encrypted data key, the messages that\n" +
			"depend on it and their size. Only headers are read: neither the keystore nor a\n" +
			"passphrase is needed. Files that are not messages are listed as skipped.",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: inventoryAction,
	}
}

func inventoryAction(c *cli.Context) error {
	paths, err := args(c, 1, maxPathArgs)
	if err != nil {
		return err
	}
	inv, err := inventory.TakeInventory(c.Context, paths...)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, inv)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tPROVIDER\tVERSION\tMESSAGES\tBYTES")
	for _, u := range inv.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", u.Key, u.Provider, versionLabel(u.Version), u.Messages, u.Bytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range inv.Skipped {
		warnf(c.App.ErrWriter, "skipped %s: %s", s.Path, s.Reason)
	}
	return nil
}

// maxPathArgs bounds the PATH arguments of commands that take many; it is
// only there because args needs an upper bound.
const maxPathArgs = 1 << 20

// versionLabel is "vN", or "-" for keys without keystack versions (KMS
// ARNs, keys of other ESDK users).
func versionLabel(v int) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("v%d", v)
}
