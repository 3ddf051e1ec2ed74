package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/rewrap"
	"github.com/keystack/keystack/keystore"
)

func rewrapCommand() *cli.Command {
	return &cli.Command{
		Name:      "rewrap",
		Usage:     "move messages to the current primary key versions without re-encrypting them",
		ArgsUsage: "PATH...",
		Description: "Rewraps every message under each PATH (files and trees) in place: the data key is\n" +
			"unwrapped once and wrapped under the target keys, the header gets a new tag, and the\n" +
			"body is kept byte for byte. Targets are the -k keys' primary versions; without -k,\n" +
			"each message moves to the primary versions of the store keys it already uses.\n" +
			"A crash leaves each file whole (old or new); running rewrap again finishes the job\n" +
			"and skips files already on their targets. A crash journal whose file has changed or\n" +
			"gone since is discarded with a warning, never written. Every file reported rewrapped is durable:\n" +
			"by default one flush per filesystem (syncfs) runs before the summary; --sync file\n" +
			"fsyncs each file instead. Files that are not messages are skipped\n" +
			"and never modified. Each file is read once: its header decides its target keys.\n" +
			"Exits 5 when every file that failed was refused by policy (keystack:ReWrap),\n" +
			"1 when any other file failed.",
		Flags: []cli.Flag{
			passphraseFileFlag,
			&cli.StringSliceFlag{Name: "key", Aliases: []string{"k"}, Usage: "target master key `NAME` (repeatable)"},
			&cli.StringSliceFlag{Name: "context", Aliases: []string{"c"}, Usage: "required encryption context pair `KEY=VALUE` (repeatable)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "report what would be rewrapped; change nothing"},
			&cli.IntFlag{Name: "workers", Value: rewrap.DefaultWorkers, Usage: "files rewrapped in parallel"},
			&cli.StringFlag{Name: "sync", Value: "batch", Usage: "make writes durable in a `MODE`: batch (one flush per filesystem before the summary) or file (fsync each file)"},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON"},
			&cli.BoolFlag{Name: "allow-legacy", Usage: "accept non-committing message format v1 suites"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		Action: rewrapAction,
	}
}

func rewrapAction(c *cli.Context) error {
	paths, err := args(c, 1, maxPathArgs)
	if err != nil {
		return err
	}
	opts, err := rewrapOptions(c)
	if err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		bar := newRewrapBar(c)
		if bar != nil {
			opts.Progress = bar.set
		}
		sum, runErr := rewrap.Rewrap(c.Context, st, paths, opts)
		bar.finish()
		if sum == nil {
			return runErr
		}
		for _, r := range sum.Journals {
			if r.Outcome == rewrap.JournalDiscarded {
				warnf(c.App.ErrWriter, "rewrap journal of %s discarded: %s", r.Path, r.Reason)
			}
		}
		if err := printRewrapSummary(c, sum); err != nil {
			return err
		}
		if runErr != nil {
			return runErr
		}
		return rewrapFailure(sum)
	})
}

// rewrapOptions reads rewrap's flags.
func rewrapOptions(c *cli.Context) (rewrap.StoreRewrapOptions, error) {
	ec, err := parseContext(c.StringSlice("context"))
	if err != nil {
		return rewrap.StoreRewrapOptions{}, err
	}
	if c.Int("workers") < 1 || c.Int("workers") > 256 {
		return rewrap.StoreRewrapOptions{}, usagef("--workers %d: want 1 to 256", c.Int("workers"))
	}
	syncMode, ok := syncModes[c.String("sync")]
	if !ok {
		return rewrap.StoreRewrapOptions{}, usagef("--sync %q: want batch or file", c.String("sync"))
	}
	return rewrap.StoreRewrapOptions{
		Keys:    c.StringSlice("key"),
		Decrypt: envelope.DecryptOptions{AllowLegacy: c.Bool("allow-legacy"), Context: ec},
		DryRun:  c.Bool("dry-run"), Workers: c.Int("workers"), Sync: syncMode,
		StopOn: passphraseErrors,
	}, nil
}

// passphraseErrors are the passphrase source's failures: they stop a
// rewrap at once, since no other key group could do better.
var passphraseErrors = []error{errNoPassphrase, errEmptyPassphrase, errPassphraseMismatch, errPassphraseFileAccess}

var syncModes = map[string]rewrap.SyncMode{"batch": rewrap.SyncBatch, "file": rewrap.SyncPerFile}

// rewrapFailure is the error of a run in which files failed: a policy
// denial (exit 5) when every failure was one, so that a principal lacking
// keystack:ReWrap is told so by the exit code; any other failure among
// them makes it a general error (exit 1).
func rewrapFailure(s *rewrap.RewrapSummary) error {
	n := len(s.Failed)
	if n == 0 {
		return nil
	}
	err := fmt.Errorf("rewrap: %d of %d files failed", n, len(s.Rewrapped)+len(s.Skipped)+n)
	for _, r := range s.Failed {
		if exitCode(r.Err) != exitDenied {
			return err
		}
	}
	return fmt.Errorf("%w, each refused by policy: %w", err, s.Failed[0].Err)
}

// rewrapBar is a progress bar over the files found, on stderr; nil when
// stderr is not a terminal or --quiet is set.
type rewrapBar struct {
	w   io.Writer
	bar *progressBar
}

func newRewrapBar(c *cli.Context) *rewrapBar {
	if c.Bool("quiet") || !isTerminal(c.App.ErrWriter) {
		return nil
	}
	return &rewrapBar{w: c.App.ErrWriter}
}

// set shows done of total files; rotation calls it one file at a time.
func (b *rewrapBar) set(done, total int) {
	if b.bar == nil {
		b.bar = newProgressBar(b.w, "rewrapping", int64(total), false)
	}
	b.bar.set(int64(done))
}

// finish erases the bar, before the summary or the error is printed.
func (b *rewrapBar) finish() {
	if b != nil && b.bar != nil {
		b.bar.finish()
	}
}

func printRewrapSummary(c *cli.Context, s *rewrap.RewrapSummary) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, s)
	}
	w := c.App.Writer
	for _, r := range s.Rewrapped {
		fmt.Fprintf(w, "%s\t%s\n", r.Outcome, r.Path)
	}
	for _, r := range s.Failed {
		fmt.Fprintf(w, "failed\t%s\t%s\n", r.Path, r.Reason)
	}
	verb := "rewrapped"
	if c.Bool("dry-run") {
		verb = "would rewrap"
	}
	return summaryLine(w, "%s %d, skipped %d, failed %d", verb, len(s.Rewrapped), len(s.Skipped), len(s.Failed))
}

func summaryLine(w io.Writer, format string, a ...any) error {
	_, err := fmt.Fprintf(w, format+"\n", a...)
	return err
}
