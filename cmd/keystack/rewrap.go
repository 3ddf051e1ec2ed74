package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/rotation"
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
			"and never modified. Exits non-zero when any file failed.",
		Flags: []cli.Flag{
			passphraseFileFlag,
			&cli.StringSliceFlag{Name: "key", Aliases: []string{"k"}, Usage: "target master key `NAME` (repeatable)"},
			&cli.StringSliceFlag{Name: "context", Aliases: []string{"c"}, Usage: "required encryption context pair `KEY=VALUE` (repeatable)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "report what would be rewrapped; change nothing"},
			&cli.IntFlag{Name: "workers", Value: 4, Usage: "files rewrapped in parallel"},
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
	ec, err := parseContext(c.StringSlice("context"))
	if err != nil {
		return err
	}
	if c.Int("workers") < 1 || c.Int("workers") > 256 {
		return usagef("--workers %d: want 1 to 256", c.Int("workers"))
	}
	syncMode, ok := syncModes[c.String("sync")]
	if !ok {
		return usagef("--sync %q: want batch or file", c.String("sync"))
	}
	st, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	journals, err := recoverJournals(c, paths)
	if err != nil {
		return err
	}
	groups, total, err := planRewrap(c.Context, st, paths, c.StringSlice("key"))
	if err != nil {
		return err
	}
	base := rotation.RewrapOptions{
		Decrypt: envelope.DecryptOptions{AllowLegacy: c.Bool("allow-legacy"), Context: ec},
		DryRun:  c.Bool("dry-run"), Workers: c.Int("workers"), Sync: syncMode,
	}
	bar := newRewrapBar(c, total)
	sum, runErr := runRewrap(c.Context, st, groups, base, bar)
	sum.Journals = append(journals, sum.Journals...)
	if err := printRewrapSummary(c, sum); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if n := len(sum.Failed); n > 0 {
		return fmt.Errorf("rewrap: %d of %d files failed", n, total)
	}
	return nil
}

// recoverJournals resolves the journals interrupted rewraps left under
// paths before any header is read for planning, and warns about each one
// discarded because its path now holds another file. A dry run changes
// nothing and leaves them.
func recoverJournals(c *cli.Context, paths []string) ([]rotation.JournalResult, error) {
	if c.Bool("dry-run") {
		return []rotation.JournalResult{}, nil
	}
	results, err := rotation.RecoverJournals(c.Context, paths)
	for _, r := range results {
		if r.Outcome == rotation.JournalDiscarded {
			warnf(c.App.ErrWriter, "rewrap journal of %s discarded: %s", r.Path, r.Reason)
		}
	}
	return results, err
}

var syncModes = map[string]rotation.SyncMode{"batch": rotation.SyncBatch, "file": rotation.SyncPerFile}

// rewrapGroup is a set of files that move to the same target keys: the
// store keys their messages use, or the -k keys.
type rewrapGroup struct {
	keys     []string // target store keys; nil when no target could be found
	files    []string
	explicit bool // keys came from -k: decrypt with every store key
}

// planRewrap lists the files under paths and groups them by target keys.
// With explicit keys every file is one group. Otherwise each message's EDKs
// are mapped to the store keys that made them; a message with an EDK no
// store key made goes to the group without targets, where it fails rather
// than silently losing a recipient. Non-messages go there too and are skipped.
func planRewrap(ctx context.Context, st *keystore.Store, paths, explicit []string) ([]*rewrapGroup, int, error) {
	files, err := rotation.ListFiles(ctx, paths)
	if err != nil {
		return nil, 0, err
	}
	if len(explicit) > 0 {
		return []*rewrapGroup{{keys: explicit, files: files, explicit: true}}, len(files), nil
	}
	owners, err := edkOwners(ctx, st)
	if err != nil {
		return nil, 0, err
	}
	byKeys := map[string]*rewrapGroup{}
	var order []string
	for _, f := range files {
		keys, err := messageKeys(ctx, f, owners)
		if err != nil {
			return nil, 0, err
		}
		id := strings.Join(keys, "\x00")
		g := byKeys[id]
		if g == nil {
			g = &rewrapGroup{keys: keys}
			byKeys[id] = g
			order = append(order, id)
		}
		g.files = append(g.files, f)
	}
	groups := make([]*rewrapGroup, 0, len(order))
	for _, id := range order {
		groups = append(groups, byKeys[id])
	}
	return groups, len(files), nil
}

// edkOwners maps (provider, key) as keystore.DescribeEDK reports them to
// the name of the store key that writes such EDKs.
func edkOwners(ctx context.Context, st *keystore.Store) (map[[2]string]string, error) {
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	owners := map[[2]string]string{}
	for _, k := range keys {
		for _, pk := range rotation.InventoryKeys(&k) {
			owners[pk] = k.Name
		}
	}
	return owners, nil
}

// messageKeys returns the sorted store keys file's EDKs name, or nil when
// it is not a message or names a key outside the store.
func messageKeys(ctx context.Context, file string, owners map[[2]string]string) ([]string, error) {
	inv, err := rotation.TakeInventory(ctx, file)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, u := range inv.Keys {
		name, ok := owners[[2]string{u.Provider, u.Key}]
		if !ok {
			return nil, nil
		}
		if !slices.Contains(keys, name) {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// storeWideErrors stop a rewrap at once: no other group could do better.
var storeWideErrors = []error{keystore.ErrBadPassphrase, keystore.ErrLocked, keystore.ErrCorruptStore,
	keystore.ErrNotInitialized, errNoPassphrase}

// runRewrap rewraps each group in turn and merges the summaries. A group
// whose keys cannot be opened fails all its files with the reason and the
// others go on, unless the keys were given with -k or the whole store is
// unusable: then it stops with the error.
func runRewrap(ctx context.Context, st *keystore.Store, groups []*rewrapGroup, base rotation.RewrapOptions, bar *progressbar.ProgressBar) (*rotation.RewrapSummary, error) {
	sum := &rotation.RewrapSummary{Rewrapped: []rotation.FileResult{}, Skipped: []rotation.FileResult{}, Failed: []rotation.FileResult{}, Journals: []rotation.JournalResult{}}
	offset := 0
	for _, g := range groups {
		opts, err := groupOptions(ctx, st, g, base)
		if err != nil {
			if g.explicit || isAny(err, storeWideErrors) || ctx.Err() != nil {
				return sortSummary(sum), err
			}
			opts = failingOptions(base, err)
		}
		if bar != nil {
			start := offset
			opts.Progress = func(done, _ int) { _ = bar.Set(start + done) }
		}
		s, err := rotation.RewrapPaths(ctx, g.files, opts)
		offset += len(g.files)
		if s != nil {
			sum.Rewrapped = append(sum.Rewrapped, s.Rewrapped...)
			sum.Skipped = append(sum.Skipped, s.Skipped...)
			sum.Failed = append(sum.Failed, s.Failed...)
			sum.Journals = append(sum.Journals, s.Journals...)
		}
		if err != nil {
			return sortSummary(sum), err
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	return sortSummary(sum), nil
}

// groupOptions opens the keyrings of a group: From decrypts with the keys
// the messages use (every store key with -k), To encrypts under the
// targets' primary versions.
func groupOptions(ctx context.Context, st *keystore.Store, g *rewrapGroup, base rotation.RewrapOptions) (rotation.RewrapOptions, error) {
	opts := base
	if g.keys == nil {
		return failingOptions(base, errNoRewrapTarget), nil
	}
	from := g.keys
	if g.explicit {
		from = nil
	}
	// Unwrapping for a rewrap is authorized (and audited) as keystack:ReWrap.
	var err error
	if opts.From, opts.To, err = st.RewrapKeyrings(ctx, from, g.keys); err != nil {
		return opts, err
	}
	opts.Targets, err = targetEDKs(ctx, st, g.keys)
	return opts, err
}

// targetEDKs describes the EDKs the targets' primary versions produce, so
// that messages already on them are skipped without unwrapping. It returns
// nil (no shortcut) when a target's EDKs cannot be predicted from the
// store alone (a BACKEND:REF spec, a KMS alias).
func targetEDKs(ctx context.Context, st *keystore.Store, keys []string) ([]keystore.EDKInfo, error) {
	var out []keystore.EDKInfo
	for _, name := range keys {
		if strings.Contains(name, ":") {
			return nil, nil // a BACKEND:REF spec
		}
		k, err := st.DescribeKey(ctx, name)
		if err != nil {
			return nil, err
		}
		t, ok := rotation.PrimaryEDK(k)
		if !ok {
			return nil, nil
		}
		out = append(out, t)
	}
	return out, nil
}

var errNoRewrapTarget = errors.New("the message names a key outside the keystore: pass the target keys with -k")

// failingOptions makes every message in a group fail with err, while
// non-messages are still skipped and interrupted rewraps still recovered.
func failingOptions(base rotation.RewrapOptions, err error) rotation.RewrapOptions {
	base.From, base.To, base.Targets = failingKeyring{err}, failingKeyring{err}, nil
	return base
}

// failingKeyring refuses every operation with its error.
type failingKeyring struct{ err error }

func (k failingKeyring) OnEncrypt(context.Context, *envelope.EncryptionMaterials) error { return k.err }
func (k failingKeyring) OnDecrypt(context.Context, *envelope.DecryptionMaterials, []envelope.EncryptedDataKey) error {
	return k.err
}

func sortSummary(s *rotation.RewrapSummary) *rotation.RewrapSummary {
	for _, l := range [][]rotation.FileResult{s.Rewrapped, s.Skipped, s.Failed} {
		sort.Slice(l, func(i, j int) bool { return l[i].Path < l[j].Path })
	}
	return s
}

// newRewrapBar returns a progress bar over total files on stderr, or nil
// when stderr is not a terminal or --quiet is set.
func newRewrapBar(c *cli.Context, total int) *progressbar.ProgressBar {
	if total == 0 || c.Bool("quiet") || !isTerminal(c.App.ErrWriter) {
		return nil
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(c.App.ErrWriter), progressbar.OptionSetDescription("rewrapping"),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100e6))
}

func printRewrapSummary(c *cli.Context, s *rotation.RewrapSummary) error {
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
