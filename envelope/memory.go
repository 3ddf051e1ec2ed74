package envelope

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// openInMemory opens the body of an unsigned message held whole in
// memory (body: every byte after the header) straight into one plaintext
// buffer, frame by frame, with the checks the Reader makes, in the same
// order: sequence numbers, lengths, tags, and nothing after the final
// frame. It spares a single small message the Reader's buffers, batches
// and copies. On failure it clears what it opened and returns nil.
func (u *unlocked) openInMemory(body []byte, maxNonFramed int) ([]byte, error) {
	out := make([]byte, 0, len(body))
	t := &u.scratch
	var err error
	for err == nil && !t.final() {
		var n int
		if n, err = nextFrame(u.codec, u.hdr.ContentType == contentNonFramed, t, body, maxNonFramed); err == nil {
			if out, err = u.codec.openTo(out, t, body[:n]); err == nil {
				body = body[n:]
			}
		}
	}
	if err == nil && len(body) != 0 {
		err = ErrTrailingData
	}
	if err != nil {
		clear(out[:cap(out)])
		return nil, err
	}
	return out, nil
}

// final reports whether t is the last frame of its message.
func (t *frameTask) final() bool { return t.kind != kindRegular }

// nextFrame reads the prefix of the frame after t (the first when t is
// new) at the start of body into t's kind and sequence number, and returns
// the frame's length on the wire. Its errors are those of readPrefix and
// readFrame for the same bytes.
func nextFrame(c *frameCodec, nonFramed bool, t *frameTask, body []byte, maxNonFramed int) (int, error) {
	if nonFramed {
		if len(body) < nonFramedPrefix {
			return 0, truncated("body", io.ErrUnexpectedEOF)
		}
		t.seq, t.kind = 1, kindNonFramed
		n := binary.BigEndian.Uint64(body[gcmIVLen:])
		if n > maxNonFramedContent {
			return 0, &ParseError{Field: "body", Reason: fmt.Sprintf("non-framed content length %d exceeds 2^36-32", n)}
		}
		if n > uint64(maxNonFramed) {
			return 0, fmt.Errorf("%w: non-framed body of %d bytes, above the limit of %d (MaxFrameLength raises it)", ErrFrameTooLarge, n, maxNonFramed)
		}
		return inBody(body, nonFramedPrefix+int(n)+gcmTagLen)
	}
	if t.seq == math.MaxUint32 {
		return 0, &ParseError{Field: "frame", Reason: "more than 2^32-1 frames"}
	}
	t.seq++
	if len(body) < 4 {
		return 0, truncated("body", io.ErrUnexpectedEOF)
	}
	n, pre, seqOff := c.frameLen, regularPrefix, 0
	if binary.BigEndian.Uint32(body) == finalMarker {
		t.kind, pre, seqOff = kindFinal, finalPrefix, 4
		if len(body) < finalPrefix {
			return 0, truncated("final frame", io.ErrUnexpectedEOF)
		}
		n = int(binary.BigEndian.Uint32(body[finalPrefix-4:]))
		if n > c.frameLen {
			return 0, &ParseError{Field: "final frame", Reason: fmt.Sprintf("content length %d exceeds frame length %d", n, c.frameLen)}
		}
	} else if len(body) < regularPrefix {
		return 0, truncated("frame", io.ErrUnexpectedEOF)
	}
	if binary.BigEndian.Uint32(body[seqOff:]) != t.seq {
		return 0, ErrAuthentication // reordered, duplicated or dropped frame
	}
	return inBody(body, pre+n+gcmTagLen)
}

// inBody returns n when body holds n bytes, else the truncation error.
func inBody(body []byte, n int) (int, error) {
	if len(body) < n {
		return 0, truncated("frame", io.ErrUnexpectedEOF)
	}
	return n, nil
}
