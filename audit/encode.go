package audit

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
)

// appendEntry appends e's canonical JSON encoding to b, with or without
// its "hash" field. The output is byte for byte what encoding/json.Marshal
// produces for Entry (same field order, omitempty rules, sorted map keys
// and string escaping), which TestAppendEntryMatchesJSON and
// FuzzAppendEntry check; Verify still decodes and re-encodes with
// encoding/json, so the two can never disagree silently. It exists because
// the audit record is on the path of every key operation and reflection
// costs more there than the rest of the record.
//
// With prev set, "prev" is its hex encoding rather than e.Prev.
func appendEntry(b []byte, e *Entry, prev *[32]byte, withHash bool) []byte {
	b = append(b, `{"time":`...)
	b = appendString(b, e.Time)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = appendField(b, `,"principal":`, e.Principal)
	b = appendField(b, `,"action":`, e.Action)
	b = appendField(b, `,"resource":`, e.Resource)
	if e.KeyVersion != 0 {
		b = append(b, `,"key_version":`...)
		b = strconv.AppendInt(b, int64(e.KeyVersion), 10)
	}
	b = appendField(b, `,"decision":`, e.Decision)
	if e.Implicit {
		b = append(b, `,"implicit":true`...)
	}
	if len(e.Statements) > 0 {
		b = append(b, `,"statements":[`...)
		for i, s := range e.Statements {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	b = appendField(b, `,"reason":`, e.Reason)
	b = appendField(b, `,"outcome":`, e.Outcome)
	b = appendField(b, `,"request_id":`, e.RequestID)
	b = appendField(b, `,"auth_method":`, e.AuthMethod)
	b = appendField(b, `,"source":`, e.Source)
	b = appendField(b, `,"message_id":`, e.MessageID)
	b = appendField(b, `,"context_hmac":`, e.ContextHMAC)
	if len(e.Context) > 0 {
		b = appendContext(b, e.Context)
	}
	b = appendField(b, `,"head":`, e.Head)
	b = appendField(b, `,"mac":`, e.MAC)
	b = appendField(b, `,"sig":`, e.Sig)
	if e.Final {
		b = append(b, `,"final":true`...)
	}
	if prev != nil {
		b = append(b, `,"prev":"`...)
		b = hex.AppendEncode(b, prev[:])
		b = append(b, '"')
	} else {
		b = append(b, `,"prev":`...)
		b = appendString(b, e.Prev)
	}
	if withHash {
		b = appendField(b, `,"hash":`, e.Hash)
	}
	return append(b, '}')
}

// appendHash turns a canonical encoding (withHash false) into the stored
// line by adding the "hash" field, which is the struct's last.
func appendHash(canonical []byte, h [32]byte) []byte {
	b := append(canonical[:len(canonical)-1], `,"hash":"`...)
	b = hex.AppendEncode(b, h[:])
	return append(b, `"}`...)
}

// appendField appends an omitempty string field.
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, key...), v)
}

func appendContext(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, `,"context":{`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. Printable ASCII that
// encoding/json leaves alone is copied; anything else (control characters,
// HTML-sensitive <, > and &, non-ASCII, invalid UTF-8) is handed to
// encoding/json, so escaping rules are never reimplemented here.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain marks the bytes encoding/json copies unescaped into a string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
