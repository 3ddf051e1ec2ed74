package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar is one line on a terminal's stderr that shows how far a run
// has got: a file's bytes, or a tree's or a rewrap's files. It redraws at
// most every progressInterval, and finish erases it. (Not a library: the
// one this replaced compiled regexps in its package initialisation, 4% of
// the instructions of every empty-file command; issue 15.)
type progressBar struct {
	mu      sync.Mutex
	w       io.Writer
	desc    string
	total   int64
	bytes   bool // counts are bytes, else files
	done    int64
	start   time.Time
	drawn   time.Time // when last drawn; zero before the first
	full    bool      // the total was drawn
	visible bool
	now     func() time.Time
}

const (
	progressInterval = 100 * time.Millisecond
	progressWidth    = 24 // characters between the brackets
)

func newProgressBar(w io.Writer, desc string, total int64, bytes bool) *progressBar {
	return &progressBar{w: w, desc: desc, total: max(total, 0), bytes: bytes, now: time.Now, start: time.Now()}
}

// add counts n more done.
func (b *progressBar) add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.moveTo(b.done + n)
}

// set makes done the count done.
func (b *progressBar) set(done int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.moveTo(done)
}

// finish erases the line, if one was drawn.
func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.visible {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.visible = false
	}
}

// moveTo draws on the first move, on reaching the total, and otherwise
// at most every progressInterval. (Parallel readers go on reporting after
// the total: re-read headers, reads at the end; those wait their turn.)
func (b *progressBar) moveTo(done int64) {
	b.done = max(done, 0)
	now := b.now()
	reached := b.done >= b.total && !b.full
	if !b.drawn.IsZero() && now.Sub(b.drawn) < progressInterval && !reached {
		return
	}
	b.full = b.full || b.done >= b.total
	b.drawn = now
	b.visible = true
	fmt.Fprint(b.w, "\r"+b.line(now)+"\x1b[K")
}

// line is "encrypting  42% [==========>             ] 420.0 MiB / 1.0 GiB, 310.2 MiB/s".
func (b *progressBar) line(now time.Time) string {
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(b.done)/float64(b.total), 1)
	}
	fill := int(frac * progressWidth)
	bar := strings.Repeat("=", fill)
	if fill < progressWidth {
		bar += ">" + strings.Repeat(" ", progressWidth-fill-1)
	}
	counts := fmt.Sprintf("%d/%d", b.done, b.total)
	if b.bytes {
		counts = humanBytes(b.done) + " / " + humanBytes(b.total)
		if secs := now.Sub(b.start).Seconds(); secs > 0 {
			counts += ", " + humanBytes(int64(float64(b.done)/secs)) + "/s"
		}
	}
	return fmt.Sprintf("%s %3d%% [%s] %s", b.desc, int(frac*100), bar, counts)
}

// progressReader counts on bar what is read through it. Like countReader
// it passes ReadAt and Seek through to its input, so that a file stays a
// file that encryption and decryption read at offsets in parallel
// (envelope's ReadFrom); what they read is counted too.
type progressReader struct {
	r   io.Reader
	bar *progressBar
}

func (p *progressReader) Read(buf []byte) (int, error) {
	n, err := p.r.Read(buf)
	p.bar.add(int64(n))
	return n, err
}

func (p *progressReader) ReadAt(buf []byte, off int64) (int, error) {
	n, err := readAt(p.r, buf, off)
	p.bar.add(int64(n))
	return n, err
}

func (p *progressReader) Seek(off int64, whence int) (int64, error) { return seek(p.r, off, whence) }
