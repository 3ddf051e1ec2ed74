package rewrap

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/inventory"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// StoreRewrapOptions configures Rewrap.
type StoreRewrapOptions struct {
	// Keys are the target keys (store key names or BACKEND:REF specs).
	// Empty: each message moves to the primary versions of the store keys
	// its encrypted data keys already name.
	Keys []string
	// Decrypt carries AllowLegacy, the required context and limits.
	Decrypt envelope.DecryptOptions
	DryRun  bool
	Sync    SyncMode
	// Workers rewrap files in parallel; 0 means DefaultWorkers.
	Workers int
	// Progress, when set, is called after each file with the number of
	// files done and the number found.
	Progress func(done, total int)
	// StopOn lists the errors (matched with errors.Is), besides the
	// store's own (a bad passphrase, a locked, corrupt or missing store),
	// that stop the run when opening a target group's keys fails, because
	// no other group could do better: the caller's passphrase source's.
	StopOn []error
}

// ErrNoRewrapTarget fails a message that names a key outside the store
// when Rewrap has no explicit target keys.
var ErrNoRewrapTarget = errors.New("the message names a key outside the keystore: pass the target keys with -k")

// storeWideErrors stop a rewrap at once: no other group could do better.
var storeWideErrors = []error{keystore.ErrBadPassphrase, keystore.ErrLocked, keystore.ErrCorruptStore, keystore.ErrNotInitialized}

// Rewrap rewraps every message under paths (files and trees) with the
// keys of st, as RewrapPaths does, walking each tree once and parsing each
// header once. Messages are grouped by target keys: opts.Keys, or else the
// store keys each message's EDKs name (a message naming a key outside the
// store fails with ErrNoRewrapTarget rather than silently losing a
// recipient). Each group's keyrings are opened once, when its first
// message is reached, through st.RewrapKeyrings, which authorizes and
// audits the unwrapping as keystack:ReWrap; messages already on their
// group's targets are skipped without any key operation when the targets
// can be predicted from the store (see primaryEDK).
//
// A group whose keys cannot be opened fails its messages with the reason
// (FileResult.Err), and the others go on; with opts.Keys, or when the
// whole store is unusable (see StopOn), Rewrap stops with the error and
// the summary of the files done so far. The summary is sorted by path.
func Rewrap(ctx context.Context, st *keystore.Store, paths []string, opts StoreRewrapOptions) (*RewrapSummary, error) {
	base := RewrapOptions{Decrypt: opts.Decrypt, DryRun: opts.DryRun, Sync: opts.Sync, Workers: opts.Workers, Progress: opts.Progress}
	pl := &storePlan{st: st, base: base, explicit: opts.Keys, stopOn: opts.StopOn, groups: map[string]*planGroup{}}
	sum, err := rewrapTree(ctx, paths, base, pl)
	if sum != nil {
		for _, l := range [][]FileResult{sum.Rewrapped, sum.Skipped, sum.Failed} {
			sort.Slice(l, func(i, j int) bool { return l[i].Path < l[j].Path })
		}
	}
	return sum, err
}

// storePlan maps each message to the keyrings of its target group,
// opening each group's once.
type storePlan struct {
	st       *keystore.Store
	base     RewrapOptions
	explicit []string
	stopOn   []error
	owners   map[[2]string]string // (provider, key) of EDKs → store key
	mu       sync.Mutex           // guards groups; held while a group opens
	groups   map[string]*planGroup
}

// planGroup is a target group's options, or the error that stops the run.
type planGroup struct {
	opts RewrapOptions
	err  error
}

// start opens the explicit targets, so that a bad -k fails before any file
// (also in a tree without messages), or else maps the store's keys.
func (p *storePlan) start(ctx context.Context) error {
	if len(p.explicit) > 0 {
		g := p.open(ctx, p.explicit)
		p.groups[""] = g
		return g.err
	}
	var err error
	p.owners, err = edkOwners(ctx, p.st)
	return err
}

func (p *storePlan) plan(ctx context.Context, h *envelope.Header) (RewrapOptions, error) {
	keys, id := p.explicit, ""
	if len(keys) == 0 {
		keys = messageKeys(h, p.owners)
		id = "\x00" + strings.Join(keys, "\x00")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groups[id]
	if g == nil {
		g = p.open(ctx, keys)
		p.groups[id] = g
	}
	return g.opts, g.err
}

// open opens the keyrings of the group moving to keys. A failure fails
// the group's messages, or stops the run (see Rewrap).
func (p *storePlan) open(ctx context.Context, keys []string) *planGroup {
	if keys == nil {
		return &planGroup{opts: failingOptions(p.base, ErrNoRewrapTarget)}
	}
	opts, err := groupOptions(ctx, p.st, keys, len(p.explicit) > 0, p.base)
	switch {
	case err == nil:
		return &planGroup{opts: opts}
	case len(p.explicit) > 0 || isAny(err, storeWideErrors) || isAny(err, p.stopOn) || ctx.Err() != nil:
		return &planGroup{err: err}
	}
	return &planGroup{opts: failingOptions(p.base, err)}
}

func isAny(err error, targets []error) bool {
	return slices.ContainsFunc(targets, func(t error) bool { return errors.Is(err, t) })
}

// edkOwners maps (provider, key) as keyring.DescribeEDK reports them to
// the name of the store key that writes such EDKs.
func edkOwners(ctx context.Context, st *keystore.Store) (map[[2]string]string, error) {
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	owners := map[[2]string]string{}
	for _, k := range keys {
		for _, pk := range inventory.Keys(&k) {
			owners[pk] = k.Name
		}
	}
	return owners, nil
}

// messageKeys returns the sorted store keys h's EDKs name, or nil when one
// names a key outside the store.
func messageKeys(h *envelope.Header, owners map[[2]string]string) []string {
	var keys []string
	for _, edk := range h.EncryptedDataKeys {
		d := keyring.DescribeEDK(edk)
		name, ok := owners[[2]string{d.ProviderID, d.Key}]
		if !ok {
			return nil
		}
		if !slices.Contains(keys, name) {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	return keys
}

// groupOptions opens the keyrings of a group: From decrypts with the keys
// the messages use (every store key when the targets are explicit), To
// encrypts under the targets' primary versions.
func groupOptions(ctx context.Context, st *keystore.Store, keys []string, explicit bool, base RewrapOptions) (RewrapOptions, error) {
	opts := base
	from := keys
	if explicit {
		from = nil
	}
	// Unwrapping for a rewrap is authorized (and audited) as keystack:ReWrap.
	var err error
	if opts.From, opts.To, err = st.RewrapKeyrings(ctx, from, keys); err != nil {
		return opts, err
	}
	opts.Targets, err = targetEDKs(ctx, st, keys)
	return opts, err
}

// targetEDKs describes the EDKs the targets' primary versions produce, so
// that messages already on them are skipped without unwrapping. It returns
// nil (no shortcut) when a target's EDKs cannot be predicted from the
// store alone (a BACKEND:REF spec, a KMS alias).
func targetEDKs(ctx context.Context, st *keystore.Store, keys []string) ([]keyring.EDKInfo, error) {
	var out []keyring.EDKInfo
	for _, name := range keys {
		if strings.Contains(name, ":") {
			return nil, nil // a BACKEND:REF spec
		}
		k, err := st.DescribeKey(ctx, name)
		if err != nil {
			return nil, err
		}
		t, ok := primaryEDK(k)
		if !ok {
			return nil, nil
		}
		out = append(out, t)
	}
	return out, nil
}

// failingOptions makes every message of a group fail with err, after the
// checks that come before any key (a legacy suite, the required context),
// as if its keys refused it.
func failingOptions(base RewrapOptions, err error) RewrapOptions {
	base.From, base.To, base.Targets = failingKeyring{err}, failingKeyring{err}, nil
	return base
}

// failingKeyring refuses every operation with its error.
type failingKeyring struct{ err error }

func (k failingKeyring) OnEncrypt(context.Context, *envelope.EncryptionMaterials) error { return k.err }
func (k failingKeyring) OnDecrypt(context.Context, *envelope.DecryptionMaterials, []envelope.EncryptedDataKey) error {
	return k.err
}
