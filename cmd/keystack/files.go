package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/fsx"
)

// defaultSuffix is what encrypt --recursive appends and decrypt
// --recursive strips, unless --suffix says otherwise.
const defaultSuffix = ".ks"

// progressThreshold is the input size from which a progress bar is shown.
const progressThreshold = 8 << 20

// crypter runs encrypt or decrypt over one stream or a tree.
type crypter struct {
	c        *cli.Context
	keys     []string
	encrypt  bool
	kr       envelope.Keyring
	eopts    envelope.EncryptOptions
	dopts    envelope.DecryptOptions
	batch    *fsx.Batch // with --sync batch
	reports  []*result  // outputs waiting for the batch to publish them
	stream   bool       // the last output opened is written in place
	runState            // several files: counts, failures, progress (runs.go)
	// preallocate gives the output file opened last its final length of
	// disk space up front (fsx.File.Preallocate); nil for a stream and
	// for a durable output.
	preallocate func(int64)
}

// preallocMin is the least message length worth preallocating.
const preallocMin = 1 << 20

// result is the --json metadata of one processed file.
type result struct {
	Operation string   `json:"operation"`
	Input     string   `json:"input"`
	Output    string   `json:"output"`
	Keys      []string `json:"keys"`
	headerView
	PlaintextBytes  int64 `json:"plaintext_bytes"`
	CiphertextBytes int64 `json:"ciphertext_bytes"`
	streamed        bool  // written in place (stdout, a device, a FIFO, a socket)
	stdout          bool  // written to stdout (-o -, or a name for it such as /dev/stdout)
	hdr             *envelope.Header
}

// batchFiles is how many outputs --sync batch publishes at a time (a
// variable for tests).
var batchFiles = 1024

// report prints res as --json asks, once its output is published: at
// once, or with --sync batch after the flush that publishes it.
func (k *crypter) report(res *result) error {
	if k.batch != nil && !res.streamed {
		k.reports = append(k.reports, res)
		if k.batch.Len() < batchFiles && k.c.String("recursive") != "" {
			return nil
		}
		return k.publish()
	}
	if !k.c.Bool("json") {
		return nil
	}
	w := k.c.App.Writer
	if res.stdout {
		w = k.c.App.ErrWriter // stdout carries the data
	}
	return writeJSON(w, res)
}

// publish flushes the --sync batch outputs and prints the reports of
// those it published.
func (k *crypter) publish() error {
	if k.batch == nil {
		return nil
	}
	published, err := k.batch.Flush()
	done := make(map[string]bool, len(published))
	for _, p := range published {
		done[p] = true
	}
	for _, res := range k.reports {
		if done[res.Output] && k.c.Bool("json") {
			if werr := writeJSON(k.c.App.Writer, res); err == nil {
				err = werr
			}
		}
	}
	k.reports = k.reports[:0]
	return err
}

func isStdio(name string) bool { return name == "" || name == "-" }

// runOne processes in into out. A file output appears only once complete;
// on any failure, or an interruption, no partial output is left.
func (k *crypter) runOne(in, out string) (*result, error) {
	src, size, closeSrc, err := k.openSource(in, out)
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	dst, commit, abort, err := k.openSink(out)
	if err != nil {
		return nil, wrapPath(out, err)
	}
	defer abort()
	src, endBar := k.progress(src, size)
	if !k.encrypt && k.c.Bool("decode") {
		src = newBase64Source(src)
	}
	var res *result
	if k.encrypt {
		res, err = k.encryptStream(dst, src, size)
	} else {
		res, err = k.decryptStream(dst, src, size)
	}
	endBar()
	if err != nil {
		return nil, wrapPath(in, err)
	}
	if err := commit(); err != nil {
		return nil, wrapPath(out, err)
	}
	res.Input, res.Output, res.Keys, res.streamed = in, out, k.keys, k.stream
	res.stdout = k.namesStdout(out)
	if res.Keys == nil {
		res.Keys = []string{}
	}
	k.logDone(res)
	return res, k.meta.write(k.mode(), in, out, res.hdr)
}

// openSource opens in, refusing an output that is the input itself.
func (k *crypter) openSource(in, out string) (io.Reader, int64, func(), error) {
	ctx := k.c.Context
	if isStdio(in) {
		armInterrupts(k.c) // a read of stdin may wait for ever
		k.waitingForInput()
		if f, ok := k.c.App.Reader.(*os.File); ok {
			growPipe(f)
		}
		return &ctxReader{ctx: ctx, r: k.c.App.Reader}, -1, func() {}, nil
	}
	f, err := os.Open(in)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = fmt.Errorf("%s is a directory (use --recursive)", in)
	}
	if err == nil && !isStdio(out) {
		// Reading and writing one character device (a terminal) are
		// separate streams; any other file must not be both.
		if ofi, serr := os.Stat(out); serr == nil && os.SameFile(fi, ofi) && ofi.Mode()&fs.ModeCharDevice == 0 {
			err = usagef("%s: input and output are the same file", in)
		}
	}
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	size := int64(-1)
	if !fi.Mode().IsRegular() || fi.Size() > lazyInterruptMax {
		armInterrupts(k.c) // a device or FIFO may block; a large file takes a while
	}
	if fi.Mode().IsRegular() {
		size = fi.Size()
	} else if fi.Mode()&fs.ModeNamedPipe != 0 {
		growPipe(f) // only a FIFO: a tree's every regular file need not be stat'ed again
	}
	// Closing the file on cancellation unblocks a read from a FIFO at once.
	stop := context.AfterFunc(ctx, func() { f.Close() })
	return &ctxReader{ctx: ctx, r: f}, size, func() { stop(); f.Close() }, nil
}

// openSink returns the output writer with its commit and abort functions.
// stdout, and an existing character device, FIFO or socket, are written
// in place as a stream; anything else goes through fsx.
func (k *crypter) openSink(out string) (io.Writer, func() error, func(), error) {
	k.stream, k.preallocate = true, nil
	stdout := k.namesStdout(out)
	if !stdout || k.c.Bool("buffer") {
		armInterrupts(k.c) // a temporary file to remove, or a FIFO that may block
	}
	if stdout {
		if f, ok := k.c.App.Writer.(*os.File); ok {
			growPipe(f)
		}
		return k.streamSink(k.c.App.Writer, func() error { return nil })
	}
	if stream, err := streamTarget(out); err != nil || stream {
		if err != nil {
			return nil, nil, nil, err
		}
		w, err := openStream(out)
		if err != nil {
			return nil, nil, nil, err
		}
		if f, ok := w.(*os.File); ok {
			growPipe(f)
		}
		return k.streamSink(w, w.Close)
	}
	k.stream = false
	create := fsx.Create
	if k.batch != nil {
		create = k.batch.Create
	}
	f, err := create(out, k.c.Bool("force"))
	if err != nil {
		return nil, nil, nil, err
	}
	if k.c.String("sync") == "none" {
		// Only here: a durable output's fsync converts the preallocated
		// extents, which cost what the writes saved (2026-12-02).
		f.NoSync()
		k.preallocate = f.Preallocate
	}
	return asyncSink(f, f.Commit, func() { f.Abort() })
}

// namesStdout reports whether out is "-", or another name of the file
// stdout is (/dev/stdout, /dev/fd/1, or the file stdout was redirected
// to): that is written like -o -, in place.
func (k *crypter) namesStdout(out string) bool {
	if isStdio(out) {
		return true
	}
	f, ok := k.c.App.Writer.(*os.File)
	if !ok {
		return false
	}
	ofi, err := os.Stat(out)
	if err != nil {
		return false
	}
	sfi, err := f.Stat()
	return err == nil && os.SameFile(ofi, sfi)
}

// streamSink writes to w as it goes, or with decrypt --buffer only once
// the whole message authenticated; closeW runs once either way.
func (k *crypter) streamSink(w io.Writer, closeW func() error) (io.Writer, func() error, func(), error) {
	var once sync.Once
	var cerr error
	closeOnce := func() error { once.Do(func() { cerr = closeW() }); return cerr }
	if k.c.Bool("buffer") {
		sw, commit, abort, err := k.spool(w)
		if err != nil {
			closeOnce()
			return nil, nil, nil, err
		}
		return sw, func() error { return cmp.Or(commit(), closeOnce()) }, func() { abort(); closeOnce() }, nil
	}
	return w, closeOnce, func() { closeOnce() }, nil
}

// asyncSink writes into w through an asyncWriter. Its commit flushes the
// writes and then runs publish; its abort stops the writer and runs
// discard.
func asyncSink(w io.Writer, publish func() error, discard func()) (io.Writer, func() error, func(), error) {
	aw := newAsyncWriter(w)
	commit := func() error {
		if err := aw.Flush(); err != nil {
			return err
		}
		return publish()
	}
	return aw, commit, func() { aw.stop(); discard() }, nil
}

// spool is decrypt --buffer's sink: a private scratch file that no
// directory lists (see fsx.Scratch), so that nothing is left behind
// whatever happens, copied to dst only by commit, after the whole message
// authenticated.
func (k *crypter) spool(dst io.Writer) (io.Writer, func() error, func(), error) {
	f, err := fsx.Scratch(os.TempDir())
	if err != nil {
		return nil, nil, nil, err
	}
	toDst := func() error {
		defer f.Close()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err := io.Copy(dst, &ctxReader{ctx: k.c.Context, r: f})
		return err
	}
	return asyncSink(f, toDst, func() { f.Close() })
}

// progress wraps src in a progress bar on stderr for large inputs, when
// stderr is a terminal and --quiet is not set; end erases the bar.
func (k *crypter) progress(src io.Reader, size int64) (r io.Reader, end func()) {
	if size < progressThreshold || k.treeBar != nil || !k.showProgress() {
		return src, func() {}
	}
	bar := newProgressBar(k.c.App.ErrWriter, k.verb(), size, true)
	return &progressReader{src, bar}, bar.finish
}

// isTerminal reports whether w is a terminal (a variable for tests).
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// encryptStream encrypts src; a regular file's size (size >= 0) is declared
// up front, for cache byte limits and to catch a file changing under us.
func (k *crypter) encryptStream(dst io.Writer, src io.Reader, size int64) (*result, error) {
	var b64 io.WriteCloser
	if k.c.Bool("encode") {
		b64 = base64.NewEncoder(base64.StdEncoding, dst)
		dst = b64
	}
	out := &countWriter{w: dst} // counts message bytes, before any encoding
	opts := k.eopts
	opts.PlaintextLength = max(size, 0)
	w, err := envelope.Encrypt(k.c.Context, out, k.kr, opts)
	if errors.Is(err, envelope.ErrTooManyEncryptedDataKeys) {
		return nil, &codedError{code: exitUsage, err: err} // the -k keys and the limit contradict each other
	}
	if err != nil {
		return nil, err
	}
	if length := w.MessageLength(); k.preallocate != nil && b64 == nil && length >= preallocMin {
		k.preallocate(length)
	}
	n, err := io.Copy(w, src)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil && b64 != nil {
		err = b64.Close() // writes the last, padded quantum
	}
	if err != nil {
		return nil, err
	}
	hdr := w.Header()
	return &result{Operation: "encrypt", headerView: viewHeader(hdr), PlaintextBytes: n, CiphertextBytes: out.n, hdr: hdr}, nil
}

func (k *crypter) decryptStream(dst io.Writer, src io.Reader, size int64) (*result, error) {
	in := &countReader{r: src}
	r, err := envelope.Decrypt(k.c.Context, in, k.kr, k.dopts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if length := r.Header().PlaintextLength(size); k.preallocate != nil && length >= preallocMin && !k.c.Bool("decode") {
		k.preallocate(length) // exact once the message authenticates; else the output is discarded
	}
	if err := checkContextKeys(r.Header(), k.needKeys); err != nil {
		return nil, err
	}
	n, err := io.Copy(dst, r)
	if err != nil {
		return nil, err
	}
	return &result{Operation: "decrypt", headerView: viewHeader(r.Header()), PlaintextBytes: n, CiphertextBytes: in.n, hdr: r.Header()}, nil
}

// runTree mirrors srcDir into dstDir, one message per regular file. A
// failed file does not stop the walk: every failure is reported at the
// end, and outputs already completed stay.
func (k *crypter) runTree(srcDir, dstDir string) error {
	if err := checkTree(srcDir, dstDir); err != nil {
		return err
	}
	k.startTreeBar(srcDir)
	w := fsx.Walk{Err: k.fail, Other: func(path string, _ fs.DirEntry) error {
		warnf(k.c.App.ErrWriter, "skipping %s: not a regular file", path)
		return nil
	}}
	err := fsx.WalkFiles(context.Background(), srcDir, w, func(path string, _ fs.DirEntry) error {
		out, ok := k.treeOutput(srcDir, dstDir, path)
		if !ok {
			return nil
		}
		err := os.MkdirAll(filepath.Dir(out), 0o755)
		if err == nil {
			err = k.runFile(path, out)
		}
		return k.fail(path, err)
	})
	return k.finishRun(err)
}

// treeOutput is the output for path: dstDir/REL plus the suffix on
// encrypt, without it on decrypt (where files lacking it are skipped).
func (k *crypter) treeOutput(srcDir, dstDir, path string) (string, bool) {
	rel, err := filepath.Rel(srcDir, path)
	if err != nil {
		return "", false
	}
	suffix := k.c.String("suffix")
	if k.encrypt {
		return filepath.Join(dstDir, rel+suffix), true
	}
	if !strings.HasSuffix(rel, suffix) || len(filepath.Base(rel)) == len(suffix) {
		warnf(k.c.App.ErrWriter, "skipping %s: no %s suffix", path, suffix)
		return "", false
	}
	return filepath.Join(dstDir, strings.TrimSuffix(rel, suffix)), true
}

// checkTree refuses an output directory inside the input tree, which the
// walk would otherwise feed back into itself.
func checkTree(srcDir, dstDir string) error {
	fi, err := os.Stat(srcDir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return usagef("--recursive %s: not a directory", srcDir)
	}
	src, err := filepath.Abs(srcDir)
	if err != nil {
		return err
	}
	dst, err := filepath.Abs(dstDir)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(src, dst); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usagef("--output-dir %s is inside --recursive %s", dstDir, srcDir)
	}
	return nil
}

// ctxReader fails reads once ctx is done, so an interrupt stops a copy
// between chunks and the partial output is removed.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ReadAt and Seek let the envelope's workers read a regular file at
// offsets, in parallel (an input that cannot seek refuses, and is read
// sequentially).
func (c *ctxReader) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return readAt(c.r, p, off)
}

func (c *ctxReader) Seek(off int64, whence int) (int64, error) { return seek(c.r, off, whence) }

// errNoSeek is ReadAt's and Seek's error for an input that cannot.
var errNoSeek = errors.New("input cannot seek")

func readAt(r io.Reader, p []byte, off int64) (int, error) {
	if ra, ok := r.(io.ReaderAt); ok {
		return ra.ReadAt(p, off)
	}
	return 0, errNoSeek
}

func seek(r io.Reader, off int64, whence int) (int64, error) {
	if s, ok := r.(io.Seeker); ok {
		return s.Seek(off, whence)
	}
	return 0, errNoSeek
}

// countReader counts the bytes of the message read: those Read returned,
// or, once the input was read at offsets, those up to where the reader
// moved it (Seek) past the message.
type countReader struct {
	r     io.Reader
	n     int64
	base  int64 // the input's offset before its first byte was read
	based bool
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReader) ReadAt(p []byte, off int64) (int, error) { return readAt(c.r, p, off) }

func (c *countReader) Seek(off int64, whence int) (int64, error) {
	if !c.based {
		cur, err := seek(c.r, 0, io.SeekCurrent)
		if err != nil {
			return 0, err
		}
		c.base, c.based = cur-c.n, true
	}
	pos, err := seek(c.r, off, whence)
	if err == nil {
		c.n = pos - c.base
	}
	return pos, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
