package main

// Running encrypt or decrypt over several files: the inputs of -i (a
// pattern, several files into -o DIR), --recursive trees, --skip-existing,
// failures collected until the end, a progress bar and a summary.

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keystack/keystack/internal/fsx"
)

// runState is the state of a run over several files.
type runState struct {
	meta     *metadataWriter
	needKeys []string // decrypt -c KEY: keys the context must hold
	start    time.Time
	done     int
	skipped  int
	bytes    int64
	failures []error
	treeBar  *progressBar
}

func (k *crypter) runAll() (err error) {
	c := k.c
	k.start = time.Now()
	if k.meta, err = openMetadata(c); err != nil {
		return err
	}
	defer func() { err = cmp.Or(err, k.meta.Close()) }()
	if k.meta != nil && k.meta.f != nil {
		armInterrupts(c) // a metadata line is appended whole
	}
	if k.meta != nil && k.meta.f == nil && c.String("recursive") == "" && k.namesStdout(c.String("output")) {
		return usagef("--metadata-output -: stdout already carries the output; name a file")
	}
	if c.Bool("skip-existing") && c.Bool("force") {
		return usagef("--skip-existing and --force exclude each other")
	}
	if c.String("sync") == "batch" {
		armInterrupts(c)
		k.batch = fsx.NewBatch()
		defer k.batch.Close()
	}
	if dir := c.String("recursive"); dir != "" {
		armInterrupts(c)
		// Outputs completed before a failure are still published.
		err := k.runTree(dir, c.String("output-dir"))
		return cmp.Or(err, k.publish())
	}
	jobs, err := k.jobs(c.String("input"), c.String("output"))
	if err != nil {
		return err
	}
	if len(jobs) == 1 {
		return k.runFile(jobs[0][0], jobs[0][1])
	}
	armInterrupts(c)
	for _, j := range jobs {
		if err := k.fail(j[0], k.runFile(j[0], j[1])); err != nil {
			return err
		}
	}
	return cmp.Or(k.finishRun(nil), k.publish())
}

// runFile processes one input into out and reports it; with
// --skip-existing an existing output is left alone.
func (k *crypter) runFile(in, out string) error {
	if k.treeBar != nil {
		defer k.treeBar.add(1)
	}
	if k.c.Bool("skip-existing") && !isStdio(out) {
		if _, err := os.Lstat(out); err == nil {
			k.skipped++
			infof(k.c, 1, "skipping %s: %s exists (--skip-existing)", in, out)
			return nil
		}
	}
	infof(k.c, 1, "%s %s to %s", k.verb(), displayName(in, "stdin"), displayName(out, "stdout"))
	res, err := k.runOne(in, out)
	if err != nil {
		return err
	}
	k.done++
	k.bytes += res.PlaintextBytes
	defer fileDoneHook()
	return k.report(res)
}

// fileDoneHook runs after each completed file; tests use it to kill the
// process in the middle of a tree.
var fileDoneHook = func() {}

// jobs lists the (input, output) pairs of -i and -o: -i may be a pattern
// (as the AWS Encryption CLI's), and -o an existing directory, which then
// gets each input's base name with the suffix added (encrypt) or removed
// (decrypt).
func (k *crypter) jobs(in, out string) ([][2]string, error) {
	if isStdio(in) {
		if !isStdio(out) && isDir(out) {
			return nil, usagef("-o %s is a directory: stdin has no name to give its output", out)
		}
		return [][2]string{{in, out}}, nil
	}
	inputs, err := expandInput(in)
	if err != nil {
		return nil, err
	}
	toDir := !isStdio(out) && isDir(out)
	if len(inputs) > 1 && !toDir {
		return nil, usagef("-i %s matches %d files: -o must name an existing directory", in, len(inputs))
	}
	jobs := make([][2]string, 0, len(inputs))
	for _, p := range inputs {
		o := out
		if toDir {
			if o, err = k.dirOutput(p, out); err != nil {
				return nil, err
			}
		}
		jobs = append(jobs, [2]string{p, o})
	}
	return jobs, nil
}

// expandInput is in itself when it exists or holds no pattern character,
// else the files it matches.
func expandInput(in string) ([]string, error) {
	if _, err := os.Lstat(in); err == nil || !strings.ContainsAny(in, "*?[") {
		return []string{in}, nil
	}
	m, err := filepath.Glob(in)
	if err != nil {
		return nil, usagef("-i %s: %v", in, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("-i %s: %w (no file matches the pattern)", in, fs.ErrNotExist)
	}
	return m, nil
}

// dirOutput names in's output inside dir.
func (k *crypter) dirOutput(in, dir string) (string, error) {
	base, suffix := filepath.Base(in), k.c.String("suffix")
	if k.encrypt {
		return filepath.Join(dir, base+suffix), nil
	}
	if !strings.HasSuffix(base, suffix) || base == suffix {
		return "", usagef("%s has no %s suffix to remove: name the output file with -o, or pass --suffix", in, suffix)
	}
	return filepath.Join(dir, strings.TrimSuffix(base, suffix)), nil
}

// fail records the failure of one file of several and lets the run go on,
// unless the run was interrupted.
func (k *crypter) fail(path string, err error) error {
	if err == nil {
		return nil
	}
	if k.c.Context.Err() != nil {
		return err
	}
	if !strings.Contains(err.Error(), path) {
		err = wrapPath(path, err)
	}
	k.failures = append(k.failures, err)
	return nil
}

// finishRun ends a run over several files: the summary, then every
// failure. It exits with the failures' code when they share one, else 1.
func (k *crypter) finishRun(walkErr error) error {
	if k.treeBar != nil {
		k.treeBar.finish()
	}
	k.summary()
	if walkErr != nil {
		return walkErr
	}
	if len(k.failures) == 0 {
		return nil
	}
	code := exitCode(k.failures[0])
	for _, f := range k.failures {
		printError(k.c.App.ErrWriter, f)
		if exitCode(f) != code {
			code = exitError
		}
	}
	return &codedError{code: code, err: fmt.Errorf("%d of %d files failed (listed above); "+
		"completed outputs were kept: after fixing the cause, rerun with --skip-existing to finish", len(k.failures), len(k.failures)+k.done+k.skipped)}
}

// summary prints one line with the counts, on a terminal or with -v.
func (k *crypter) summary() {
	if !k.showProgress() && verbosity(k.c) == 0 {
		return
	}
	line := fmt.Sprintf("keystack: %s %d files (%s) in %s", k.pastVerb(), k.done, humanBytes(k.bytes),
		time.Since(k.start).Round(time.Millisecond))
	if k.skipped > 0 {
		line += fmt.Sprintf(", %d skipped", k.skipped)
	}
	if len(k.failures) > 0 {
		line += fmt.Sprintf(", %d failed", len(k.failures))
	}
	fmt.Fprintln(k.c.App.ErrWriter, line)
}

// showProgress reports whether progress output goes to stderr: a
// terminal, without --quiet.
func (k *crypter) showProgress() bool {
	return !k.c.Bool("quiet") && isTerminal(k.c.App.ErrWriter)
}

// startTreeBar counts the files under dir and shows a bar of files done.
func (k *crypter) startTreeBar(dir string) {
	if !k.showProgress() {
		return
	}
	n := 0
	ignore := fsx.Walk{Err: func(string, error) error { return nil }}
	_ = fsx.WalkFiles(context.Background(), dir, ignore, func(string, fs.DirEntry) error {
		n++
		return nil
	})
	k.treeBar = newProgressBar(k.c.App.ErrWriter, k.verb(), int64(n), false)
}

func (k *crypter) verb() string {
	if k.encrypt {
		return "encrypting"
	}
	return "decrypting"
}

func (k *crypter) pastVerb() string {
	if k.encrypt {
		return "encrypted"
	}
	return "decrypted"
}

// mode is the metadata record's mode, as the AWS Encryption CLI names it.
func (k *crypter) mode() string {
	switch {
	case k.encrypt:
		return "encrypt"
	case k.dopts.RequireUnsigned:
		return "decrypt-unsigned"
	}
	return "decrypt"
}

// logDone is -vv's line about a processed file's message.
func (k *crypter) logDone(res *result) {
	if verbosity(k.c) < 2 || res.hdr == nil {
		return
	}
	h := res.hdr
	keys := make([]string, 0, len(res.EncryptedDataKeys))
	for _, e := range res.EncryptedDataKeys {
		keys = append(keys, e.ProviderID+":"+e.KeyName)
	}
	infof(k.c, 2, "%s: suite %v, frame length %d, %d context pairs, data key wrapped by %s, %d plaintext bytes",
		displayName(res.Output, "stdout"), h.Suite, h.FrameLength, len(h.EncryptionContext), strings.Join(keys, ", "), res.PlaintextBytes)
}

func displayName(p, stdio string) string {
	if isStdio(p) {
		return stdio
	}
	return p
}

// humanBytes renders n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 2; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMG"[exp])
}

// waitingForInput tells a user who runs keystack without -i in a terminal
// that it is reading what they type, not hanging.
func (k *crypter) waitingForInput() {
	if f, ok := k.c.App.Reader.(*os.File); !ok || !isTerminal(f) {
		return
	}
	what := "the plaintext"
	if !k.encrypt {
		what = "the message"
	}
	fmt.Fprintf(k.c.App.ErrWriter, "keystack: reading %s from the terminal; end it with Ctrl-D (or pass -i FILE)\n", what)
}
