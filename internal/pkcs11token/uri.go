package pkcs11token

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// maxURILen bounds a URI before it is parsed.
const maxURILen = 4096

// ObjectType is an RFC 7512 "type" attribute value.
type ObjectType string

// Object types keystack uses.
const (
	TypeSecretKey  ObjectType = "secret-key"
	TypePrivateKey ObjectType = "private"
	TypePublicKey  ObjectType = "public"
)

// URI is a parsed RFC 7512 PKCS#11 URI, e.g.
//
//	pkcs11:token=prod;object=payments%2Fv2;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keystack/pin
//
// Path attributes token, serial, slot-id select the token; object, id and
// type select the key. Query attributes module-path and pin-source configure
// the module and where the PIN is read from.
//
// A PIN never appears in a URI: "pin-value" is rejected by [ParseURI],
// because URIs end up in configuration files, argv and logs. Use pin-source,
// the KEYSTACK_PKCS11_PIN environment variable, or a prompt instead. The
// type accepts "secret" as a synonym of RFC 7512's "secret-key".
type URI struct {
	Token     string     // token label
	Serial    string     // token serial number
	SlotID    *uint      // slot ID, when given
	Object    string     // object label (CKA_LABEL)
	ID        []byte     // object ID (CKA_ID)
	Type      ObjectType // object class, empty for any
	Module    string     // module-path: file name of the PKCS#11 library
	PINSource string     // pin-source: "file:/path" or an absolute path
}

// CheckKeyURI rejects a key reference (a stored key's ref) that does not
// parse or names no object, before any PKCS#11 module is loaded.
func CheckKeyURI(ref string) error {
	u, err := ParseURI(ref)
	if err == nil && u.Object == "" {
		err = fmt.Errorf("%w: a key URI needs object=LABEL", ErrInvalidURI)
	}
	return err
}

// ParseURI parses an RFC 7512 PKCS#11 URI. Vendor attributes ("x-...") are
// ignored; any other unknown or repeated attribute is an error, so that a
// typo cannot silently select a different token or key. Errors wrap
// ErrInvalidURI and never echo a pin-value.
func ParseURI(s string) (*URI, error) {
	if len(s) > maxURILen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidURI, maxURILen)
	}
	const scheme = "pkcs11:"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return nil, fmt.Errorf("%w: must start with %q", ErrInvalidURI, scheme)
	}
	path, query, _ := strings.Cut(s[len(scheme):], "?")
	u := &URI{}
	if err := parseAttrs(path, ";", u.setPath); err != nil {
		return nil, err
	}
	if err := parseAttrs(query, "&", u.setQuery); err != nil {
		return nil, err
	}
	return u, nil
}

func parseAttrs(s, sep string, set func(name, value string) error) error {
	if s == "" {
		return nil
	}
	seen := map[string]bool{}
	for _, attr := range strings.Split(s, sep) {
		name, raw, ok := strings.Cut(attr, "=")
		if !ok || name == "" {
			return fmt.Errorf("%w: attribute %q is not name=value", ErrInvalidURI, name)
		}
		if name == "pin-value" {
			return fmt.Errorf("%w: pin-value is refused (a PIN must not live in a URI); use pin-source=file:PATH, KEYSTACK_PKCS11_PIN or a prompt", ErrInvalidURI)
		}
		if seen[name] {
			return fmt.Errorf("%w: attribute %q repeated", ErrInvalidURI, name)
		}
		seen[name] = true
		value, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("%w: attribute %q: bad percent-encoding", ErrInvalidURI, name)
		}
		if strings.HasPrefix(name, "x-") {
			continue
		}
		if err := set(name, value); err != nil {
			return err
		}
	}
	return nil
}

// textAttr returns the field of u that the plain text attribute name
// sets, in the path or (query) the query, or nil.
func (u *URI) textAttr(name string, query bool) *string {
	if query {
		return map[string]*string{"module-path": &u.Module, "pin-source": &u.PINSource}[name]
	}
	return map[string]*string{"token": &u.Token, "serial": &u.Serial, "object": &u.Object}[name]
}

func (u *URI) setPath(name, value string) error {
	if f := u.textAttr(name, false); f != nil {
		*f = value
		return nil
	}
	switch name {
	case "slot-id":
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return fmt.Errorf("%w: slot-id %q is not a decimal number", ErrInvalidURI, value)
		}
		id := uint(n)
		u.SlotID = &id
	case "id":
		u.ID = []byte(value)
	case "type":
		switch ObjectType(value) {
		case TypeSecretKey, "secret":
			u.Type = TypeSecretKey
		case TypePrivateKey, TypePublicKey:
			u.Type = ObjectType(value)
		default:
			return fmt.Errorf("%w: type %q: keystack uses secret-key, private or public", ErrInvalidURI, value)
		}
	case "manufacturer", "model", "library-manufacturer", "library-description",
		"library-version", "slot-description", "slot-manufacturer":
		return fmt.Errorf("%w: attribute %q is not supported; select the token by token, serial or slot-id", ErrInvalidURI, name)
	default:
		return fmt.Errorf("%w: unknown path attribute %q", ErrInvalidURI, name)
	}
	return nil
}

func (u *URI) setQuery(name, value string) error {
	if f := u.textAttr(name, true); f != nil {
		*f = value
		return nil
	}
	if name == "module-name" {
		return fmt.Errorf("%w: module-name is not supported; give module-path", ErrInvalidURI)
	}
	return fmt.Errorf("%w: unknown query attribute %q", ErrInvalidURI, name)
}

// String returns the URI in RFC 7512 form, percent-encoding what needs it.
// It never contains a PIN (a URI cannot hold one).
func (u *URI) String() string {
	var path, query []string
	add := func(list *[]string, name, value string) {
		if value != "" {
			*list = append(*list, name+"="+escape(value, list == &query))
		}
	}
	add(&path, "token", u.Token)
	add(&path, "serial", u.Serial)
	if u.SlotID != nil {
		path = append(path, "slot-id="+strconv.FormatUint(uint64(*u.SlotID), 10))
	}
	add(&path, "object", u.Object)
	if len(u.ID) > 0 { // bytes, not text: each percent-encoded, as p11tool prints them
		path = append(path, "id="+percentAll(u.ID))
	}
	add(&path, "type", string(u.Type))
	add(&query, "module-path", u.Module)
	add(&query, "pin-source", u.PINSource)
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// escape percent-encodes all but RFC 3986 unreserved characters and ":",
// plus "/" in query values (RFC 7512 pk11-query-res-avail).
func escape(s string, inQuery bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/' && inQuery {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// percentAll percent-encodes every byte of b.
func percentAll(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	return sb.String()
}

// tokenKey identifies the token a URI selects, for sharing opened tokens.
func (u *URI) tokenKey() string {
	t := URI{Token: u.Token, Serial: u.Serial, SlotID: u.SlotID, Module: u.Module, PINSource: u.PINSource}
	return t.String()
}
