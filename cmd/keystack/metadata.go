package main

// --metadata-output writes one JSON record per processed file in the shape
// the AWS Encryption CLI writes (its internal/metadata.py): keys sorted,
// Python's ", " and ": " separators, non-ASCII escaped as \uXXXX, one
// record per line. Records are written only for files that completed.

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
)

// metadataWriter appends records to the --metadata-output target.
type metadataWriter struct {
	w io.Writer
	f *os.File // nil for stdout
}

// metadataFlags are encrypt's and decrypt's --metadata-output options.
func metadataFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "metadata-output", Usage: "append one JSON record per processed file to `FILE` (- for stdout), " +
			"in the AWS Encryption CLI's shape: mode, input, output, header (suite, context, encrypted data keys)"},
		&cli.BoolFlag{Name: "overwrite-metadata", Usage: "truncate the --metadata-output file instead of appending"},
		&cli.BoolFlag{Name: "suppress-metadata", Aliases: []string{"S"}, Usage: "write no metadata (the default; accepted for AWS Encryption CLI scripts)"},
	}
}

// openMetadata opens --metadata-output, refusing a target that is stdout
// while stdout carries data, or one of the inputs or outputs.
func openMetadata(c *cli.Context) (*metadataWriter, error) {
	name := c.String("metadata-output")
	switch {
	case name == "" && c.Bool("overwrite-metadata"):
		return nil, usagef("--overwrite-metadata needs --metadata-output")
	case name == "":
		return nil, nil
	case c.Bool("suppress-metadata"):
		return nil, usagef("--metadata-output and --suppress-metadata exclude each other")
	case name == "-":
		return &metadataWriter{w: c.App.Writer}, nil
	}
	if err := checkMetadataPath(c, name); err != nil {
		return nil, err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if c.Bool("overwrite-metadata") {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(name, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--metadata-output: %w", err)
	}
	return &metadataWriter{w: f, f: f}, nil
}

// checkMetadataPath refuses a metadata file that is the input or output,
// or lies inside the tree being read or written (as the AWS Encryption CLI does).
func checkMetadataPath(c *cli.Context, name string) error {
	abs, err := filepath.Abs(name)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return usagef("--metadata-output %s: its directory does not exist", name)
	}
	for _, p := range []string{c.String("input"), c.String("output"), c.String("recursive"), c.String("output-dir")} {
		if p == "" || isStdio(p) {
			continue
		}
		pa, err := filepath.Abs(p)
		if err == nil && (pa == abs || strings.HasPrefix(abs, pa+string(filepath.Separator))) {
			return usagef("--metadata-output %s: it is %s or inside it", name, p)
		}
	}
	return nil
}

func (m *metadataWriter) Close() error {
	if m == nil || m.f == nil {
		return nil
	}
	return m.f.Close()
}

// write appends the record of one processed file.
func (m *metadataWriter) write(mode, in, out string, hdr *envelope.Header) error {
	if m == nil {
		return nil
	}
	rec := map[string]any{"mode": mode, "input": recordPath(in, "<stdin>"), "output": recordPath(out, "<stdout>"),
		"header": headerRecord(hdr)}
	if mode != "encrypt" {
		// The AWS Encryption CLI has the header authentication only when decrypting.
		rec["header_auth"] = map[string]any{"iv": b64(hdr.AuthIV()), "tag": b64(hdr.AuthTag())}
	}
	var b bytes.Buffer
	pyJSON(&b, rec)
	b.WriteByte('\n')
	_, err := m.w.Write(b.Bytes())
	if err != nil {
		return fmt.Errorf("--metadata-output: %w", err)
	}
	return nil
}

// recordPath is the absolute path of a file, or stdio's Python name.
func recordPath(p, stdio string) string {
	if isStdio(p) {
		return stdio
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// headerRecord is the header as the AWS Encryption CLI's json_ready_header
// renders the Python ESDK's MessageHeader.
func headerRecord(h *envelope.Header) map[string]any {
	r := map[string]any{
		"version":             strconv.Itoa(h.Version) + ".0",
		"algorithm":           pythonSuiteName(h.Suite),
		"message_id":          b64(h.MessageID),
		"encryption_context":  contextRecord(h.EncryptionContext),
		"encrypted_data_keys": edkRecords(h.EncryptedDataKeys),
		"content_type":        h.ContentType,
		"frame_length":        int(h.FrameLength),
		"type":                nil,
		"header_iv_length":    nil,
		"commitment_key":      nil,
	}
	if h.Version == 1 {
		r["type"], r["header_iv_length"] = 128, 12 // customer authenticated encrypted data, 96-bit IVs
	}
	if ck := h.CommitKey(); len(ck) > 0 {
		r["commitment_key"] = b64(ck)
	}
	return r
}

// pythonSuiteName is the Python ESDK's Algorithm member name: the spec's
// name without "_NO_KDF".
func pythonSuiteName(s envelope.Suite) string { return strings.TrimSuffix(s.String(), "_NO_KDF") }

func contextRecord(ec map[string]string) map[string]any {
	out := make(map[string]any, len(ec))
	for k, v := range ec {
		out[k] = v
	}
	return out
}

// edkRecords lists the EDKs base64-encoded, sorted by provider ID and
// key info bytes as the AWS Encryption CLI sorts them.
func edkRecords(edks []envelope.EncryptedDataKey) []any {
	sorted := append([]envelope.EncryptedDataKey(nil), edks...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a := append([]byte(sorted[i].ProviderID), sorted[i].ProviderInfo...)
		b := append([]byte(sorted[j].ProviderID), sorted[j].ProviderInfo...)
		return bytes.Compare(a, b) < 0
	})
	out := make([]any, 0, len(sorted))
	for _, e := range sorted {
		out = append(out, map[string]any{
			"key_provider":       map[string]any{"provider_id": b64([]byte(e.ProviderID)), "key_info": b64(e.ProviderInfo)},
			"encrypted_data_key": b64(e.Ciphertext),
		})
	}
	return out
}

// pyJSON writes v as Python's json.dumps(v, sort_keys=True) does.
func pyJSON(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case int:
		b.WriteString(strconv.Itoa(v))
	case string:
		pyString(b, v)
	case []any:
		pySeq(b, '[', ']', len(v), func(i int) { pyJSON(b, v[i]) })
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v)) // UTF-8 byte order is code point order, as Python sorts
		pySeq(b, '{', '}', len(keys), func(i int) {
			pyString(b, keys[i])
			b.WriteString(": ")
			pyJSON(b, v[keys[i]])
		})
	default:
		panic(fmt.Sprintf("pyJSON: unsupported %T", v))
	}
}

// pySeq writes open, the n items (item(i) writes item i) separated by
// ", " as Python's json.dumps separates them, and close.
func pySeq(b *bytes.Buffer, open, close byte, n int, item func(i int)) {
	b.WriteByte(open)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		item(i)
	}
	b.WriteByte(close)
}

// pyString writes s with ensure_ascii escaping: \uXXXX (surrogate pairs
// above U+FFFF) for everything outside printable ASCII.
func pyString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
}

// isDir reports whether p is an existing directory.
func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
