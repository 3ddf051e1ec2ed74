package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keystack/keystack/internal/esdktest"
	"github.com/keystack/keystack/keyring"
)

// cmdSpecMsg runs "specmsg KEYFILE SHAPE PLAIN OUT": it writes to OUT a
// message of PLAIN built from the format specification (esdktest), not by
// keystack's writer, with its data key wrapped by the raw AES key in
// KEYFILE (base64) under namespace "spec", key name "aes". SHAPE is
// non-framed (a v2 non-framed body), random-iv (4096-byte frames sealed
// under random IVs) or frame-length=N (a header declaring frames of N
// bytes, then 64 KiB of zeros where frames should be).
func cmdSpecMsg(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: specmsg KEYFILE SHAPE PLAIN OUT")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ts.ReadFile(args[0])))
	ts.Check(err)
	kr, err := keyring.NewRawAES("spec", "aes", key)
	ts.Check(err)
	pt, err := os.ReadFile(ts.MkAbs(args[2]))
	ts.Check(err)
	shape, spec := args[1], esdktest.HeaderSpec{FrameLength: 4096}
	if n, ok := strings.CutPrefix(shape, "frame-length="); ok {
		fl, err := strconv.ParseUint(n, 10, 32)
		ts.Check(err)
		spec.FrameLength = uint32(fl)
	}
	spec.NonFramed = shape == "non-framed"
	m, err := esdktest.NewMessage(context.Background(), kr, spec)
	ts.Check(err)
	msg := bytes.Clone(m.Header)
	switch {
	case shape == "non-framed":
		msg = append(msg, m.NonFramed(esdktest.RandomIV(0), pt)...)
	case shape == "random-iv":
		msg = append(msg, m.Framed(pt, 4096, esdktest.RandomIV)...)
	case strings.HasPrefix(shape, "frame-length="):
		msg = append(msg, make([]byte, 64<<10)...)
	default:
		ts.Fatalf("specmsg: unknown shape %q", shape)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), msg, 0o644))
}
