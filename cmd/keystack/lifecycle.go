package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/inventory"
	"github.com/keystack/keystack/keystore"
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
				"messages to the new version. A pkcs11 key gets a new token object (LABEL/vN) of the\n" +
				"same kind; an aws-kms key is rotated in KMS (RotateKeyOnDemand, same ARN). If the\n" +
				"backend cannot rotate or fails, the command fails and no version is added.",
			Flags:  []cli.Flag{passphraseFileFlag, reasonFlag()},
			Action: keyRotateAction,
		},
		keyPolicyCommand(),
		keyVersionCommand(),
		{
			Name: "min-version", Usage: "refuse decryption under versions older than --version", ArgsUsage: "NAME",
			Flags: []cli.Flag{passphraseFileFlag, versionFlag(), reasonFlag()},
			Action: versionAction(func(st *keystore.Store) versionChange {
				return st.SetMinDecryptionVersion
			}, "set the minimum decryption version of"),
		},
		{
			Name: "destroy-due", Usage: "erase every version whose scheduled destruction time has passed",
			Flags:  []cli.Flag{passphraseFileFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
			Action: keyDestroyDueAction,
		},
		keyRetireCommand(),
	}
}

func reasonFlag() cli.Flag {
	return &cli.StringFlag{Name: "reason", Usage: "why, recorded in the key version's history"}
}

func versionFlag() cli.Flag {
	return &cli.IntFlag{Name: "version", Usage: "key version `N`"}
}

// illegal gives lifecycle refusals the key error exit code.
func illegal(err error) error {
	if errors.Is(err, keystore.ErrIllegalTransition) {
		return &codedError{code: exitKey, err: err}
	}
	return err
}

var keyRotateAction = storeAction(1, 1, func(c *cli.Context, st *keystore.Store, a []string) error {
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
})

// versionChange is the shape of the Store's version lifecycle methods.
type versionChange func(ctx context.Context, name string, v int, reason string) (*keystore.KeyInfo, error)

func keyVersionCommand() *cli.Command {
	sub := func(name, usage, done string, pick func(*keystore.Store) versionChange) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "NAME",
			Flags:  []cli.Flag{passphraseFileFlag, versionFlag(), reasonFlag()},
			Action: versionAction(pick, done),
		}
	}
	schedule := &cli.Command{
		Name: "schedule-destroy", Usage: "schedule a version's destruction after --waiting", ArgsUsage: "NAME",
		Flags: []cli.Flag{passphraseFileFlag, versionFlag(), reasonFlag(),
			&cli.DurationFlag{Name: "waiting", Value: keystore.DefaultMinDestructionWait,
				Usage: "how long the version stays recoverable (at least 7 days)"}},
		Action: keyScheduleDestroyAction,
	}
	return &cli.Command{
		Name:  "version",
		Usage: "change the state of a key version",
		Description: "States: enabled (encrypts when primary, decrypts), decrypt-only, disabled,\n" +
			"pending-destruction (cancel-destroy takes it back to disabled) and destroyed (final).\n" +
			"The primary version is always enabled: it cannot be disabled or scheduled.",
		Subcommands: []*cli.Command{
			sub("enable", "enable a version", "enabled", func(st *keystore.Store) versionChange { return st.EnableVersion }),
			sub("disable", "disable a version (reversible)", "disabled", func(st *keystore.Store) versionChange { return st.DisableVersion }),
			sub("decrypt-only", "let a version decrypt but never encrypt", "made decrypt-only",
				func(st *keystore.Store) versionChange { return st.SetDecryptOnly }),
			sub("primary", "make an enabled version the one that encrypts", "made primary",
				func(st *keystore.Store) versionChange { return st.SetPrimary }),
			schedule,
			sub("cancel-destroy", "cancel a scheduled destruction (the version stays disabled)", "cancelled destruction of",
				func(st *keystore.Store) versionChange { return st.CancelVersionDestruction }),
		},
	}
}

// versionTarget reads NAME and --version N.
func versionTarget(c *cli.Context) (string, int, error) {
	a, err := args(c, 1, 1)
	if err != nil {
		return "", 0, err
	}
	if !c.IsSet("version") || c.Int("version") < 1 {
		return "", 0, usagef("%s: missing --version N (N >= 1)", c.Command.HelpName)
	}
	return a[0], c.Int("version"), nil
}

// versionAction runs the version change pick selects and reports it.
func versionAction(pick func(*keystore.Store) versionChange, done string) cli.ActionFunc {
	return func(c *cli.Context) error {
		name, v, err := versionTarget(c)
		if err != nil {
			return err
		}
		return withStore(c, func(st *keystore.Store) error {
			if _, err := pick(st)(c.Context, name, v, c.String("reason")); err != nil {
				return illegal(err)
			}
			fmt.Fprintf(c.App.ErrWriter, "keystack: %s %s v%d\n", done, name, v)
			return nil
		})
	}
}

func keyScheduleDestroyAction(c *cli.Context) error {
	name, v, err := versionTarget(c)
	if err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		k, err := st.ScheduleVersionDestruction(c.Context, name, v, c.Duration("waiting"), c.String("reason"))
		if err != nil {
			return illegal(err)
		}
		for _, ver := range k.Versions {
			if ver.Version == v {
				fmt.Fprintf(c.App.ErrWriter, "keystack: %s v%d will be destroyed at %s\n", name, v, ver.DestroyAt.UTC().Format(time.RFC3339))
			}
		}
		return nil
	})
}

var keyDestroyDueAction = storeAction(0, 0, func(c *cli.Context, st *keystore.Store, _ []string) error {
	done, err := st.DestroyDueVersions(c.Context)
	if done == nil {
		done = []keystore.DestroyedVersion{}
	}
	if c.Bool("json") {
		if werr := writeJSON(c.App.Writer, done); werr != nil {
			return werr
		}
	} else {
		for _, d := range done {
			fmt.Fprintf(c.App.Writer, "destroyed %s v%d\n", d.Key, d.Version)
		}
	}
	return err
})

func keyPolicyCommand() *cli.Command {
	return &cli.Command{
		Name: "policy", Usage: "set a key's rotation schedule", ArgsUsage: "NAME",
		Description: "\"keystack rotate run\" (from cron) or \"keystack rotate daemon\" rotates the key every\n" +
			"--every, spread over [every, every+jitter) by a per-key offset (--every 0: never).\n" +
			"With --retire-after D, each pass also disables (retires, reversibly) every decrypt-only\n" +
			"version superseded more than D ago; \"key version enable\" brings one back for good.\n" +
			"Hook commands are a program and its arguments separated by spaces, run without a\n" +
			"shell. --remove drops the schedule.",
		Flags: []cli.Flag{passphraseFileFlag,
			&cli.DurationFlag{Name: "every", Usage: "rotation period, e.g. 720h"},
			&cli.DurationFlag{Name: "jitter", Usage: "spread, smaller than --every"},
			&cli.DurationFlag{Name: "retire-after", Usage: "disable decrypt-only versions superseded longer than `D` (0: never)"},
			&cli.StringFlag{Name: "on-success", Usage: "`CMD` run after each scheduled rotation"},
			&cli.StringFlag{Name: "on-failure", Usage: "`CMD` run after each failed scheduled rotation"},
			&cli.StringFlag{Name: "webhook", Usage: "`URL` that receives a JSON POST after each scheduled rotation"},
			&cli.BoolFlag{Name: "kms-automatic", Usage: "hand an aws-kms key's rotation to KMS (period of 90 to 2560 days)"},
			&cli.BoolFlag{Name: "remove", Usage: "remove the key's rotation schedule"},
		},
		Action: keyPolicyAction,
	}
}

func keyPolicyAction(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	var rs *keystore.RotationSettings
	switch {
	case c.Bool("remove") && anySet(c, "every", "jitter", "retire-after", "on-success", "on-failure", "webhook", "kms-automatic"):
		return usagef("key policy: --remove takes no schedule flags")
	case !c.Bool("remove") && !c.IsSet("every"):
		return usagef("key policy: missing --every D (or --remove)")
	case !c.Bool("remove"):
		rs = &keystore.RotationSettings{
			Every: c.Duration("every"), Jitter: c.Duration("jitter"), RetireAfter: c.Duration("retire-after"),
			OnSuccessCommand: strings.Fields(c.String("on-success")), OnFailureCommand: strings.Fields(c.String("on-failure")),
			WebhookURL: c.String("webhook"), KMSAutomatic: c.Bool("kms-automatic"),
		}
	}
	return withStore(c, func(st *keystore.Store) error {
		if _, err := st.SetRotationSettings(c.Context, a[0], rs); err != nil {
			return err
		}
		if rs == nil {
			fmt.Fprintf(c.App.ErrWriter, "keystack: removed the rotation schedule of %s\n", a[0])
			return nil
		}
		fmt.Fprintf(c.App.ErrWriter, "keystack: %s rotates every %v (jitter %v)", a[0], rs.Every, rs.Jitter)
		if rs.RetireAfter > 0 {
			fmt.Fprintf(c.App.ErrWriter, "; superseded versions retire after %v", rs.RetireAfter)
		}
		fmt.Fprintln(c.App.ErrWriter)
		return nil
	})
}

func anySet(c *cli.Context, names ...string) bool {
	for _, n := range names {
		if c.IsSet(n) {
			return true
		}
	}
	return false
}

func keyRetireCommand() *cli.Command {
	return &cli.Command{
		Name: "retire", Usage: "schedule a superseded version's destruction once no message needs it", ArgsUsage: "NAME",
		Description: "Takes an inventory of every --path and refuses (exit 1) while any message there still\n" +
			"depends on --version: rewrap them first, or pass --force. Then the version is\n" +
			"scheduled for destruction after --waiting; \"key version cancel-destroy\" takes it back.",
		Flags: []cli.Flag{passphraseFileFlag, versionFlag(),
			&cli.StringSliceFlag{Name: "path", Usage: "file or tree `PATH` to check for messages (repeatable)"},
			&cli.BoolFlag{Name: "force", Usage: "retire even while messages depend on the version"},
			&cli.DurationFlag{Name: "waiting", Value: keystore.DefaultMinDestructionWait,
				Usage: "how long the version stays recoverable (at least 7 days)"},
		},
		Action: keyRetireAction,
	}
}

func keyRetireAction(c *cli.Context) error {
	name, v, err := versionTarget(c)
	if err != nil {
		return err
	}
	paths := c.StringSlice("path")
	if len(paths) == 0 && !c.Bool("force") {
		return usagef("key retire: give the --path trees to check, or --force")
	}
	return withStore(c, func(st *keystore.Store) error {
		if _, err := inventory.Retire(c.Context, st, name, v, paths, c.Bool("force"), c.Duration("waiting")); err != nil {
			return illegal(err)
		}
		fmt.Fprintf(c.App.ErrWriter, "keystack: retired %s v%d: destruction scheduled in %v\n", name, v, c.Duration("waiting"))
		return nil
	})
}
