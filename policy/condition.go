package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

type opKind int

const (
	opString opKind = iota
	opStringFold
	opStringLike
	opNumeric
	opDate
	opBool
	opIP
	opNull
)

type cmpKind int

const (
	cmpEq cmpKind = iota
	cmpLT
	cmpLE
	cmpGT
	cmpGE
)

type operator struct {
	kind    opKind
	cmp     cmpKind
	negated bool
}

// operators are the IAM condition operators keystack supports; names are
// case-sensitive as in IAM. Each also exists with the IfExists suffix.
var operators = map[string]operator{
	"StringEquals":              {kind: opString},
	"StringNotEquals":           {kind: opString, negated: true},
	"StringEqualsIgnoreCase":    {kind: opStringFold},
	"StringNotEqualsIgnoreCase": {kind: opStringFold, negated: true},
	"StringLike":                {kind: opStringLike},
	"StringNotLike":             {kind: opStringLike, negated: true},
	"NumericEquals":             {kind: opNumeric},
	"NumericNotEquals":          {kind: opNumeric, negated: true},
	"NumericLessThan":           {kind: opNumeric, cmp: cmpLT},
	"NumericLessThanEquals":     {kind: opNumeric, cmp: cmpLE},
	"NumericGreaterThan":        {kind: opNumeric, cmp: cmpGT},
	"NumericGreaterThanEquals":  {kind: opNumeric, cmp: cmpGE},
	"DateEquals":                {kind: opDate},
	"DateNotEquals":             {kind: opDate, negated: true},
	"DateLessThan":              {kind: opDate, cmp: cmpLT},
	"DateLessThanEquals":        {kind: opDate, cmp: cmpLE},
	"DateGreaterThan":           {kind: opDate, cmp: cmpGT},
	"DateGreaterThanEquals":     {kind: opDate, cmp: cmpGE},
	"Bool":                      {kind: opBool},
	"IpAddress":                 {kind: opIP},
	"NotIpAddress":              {kind: opIP, negated: true},
	"Null":                      {kind: opNull},
}

type keyKind int

const (
	keyContext keyKind = iota
	keyContextKeys
	keyVersion
	keyTime
	keySourceIP
	keyPrincipalTag
	keyResourceTag
	keyAuthMethod
	keyXKS
)

// Condition keys. Names are case-insensitive, as in IAM.
const (
	condKeyEncryptionContext     = "keystack:EncryptionContext/" // + context key
	condKeyEncryptionContextKeys = "keystack:EncryptionContextKeys"
	condKeyKeyVersion            = "keystack:KeyVersion"
	condKeyCurrentTime           = "keystack:CurrentTime"
	condKeySourceIP              = "keystack:SourceIp"
	condKeyPrincipalTag          = "keystack:PrincipalTag/" // + tag key
	condKeyResourceTag           = "keystack:ResourceTag/"  // + tag key of the key acted on
	condKeyAuthMethod            = "keystack:AuthMethod"    // how the key server authenticated the caller
	// condKeyXKS + a requestMetadata field name (awsPrincipalArn, kmsKeyArn,
	// kmsOperation, kmsRequestId, kmsViaService, awsSourceVpc,
	// awsSourceVpce) is that field of an AWS KMS XKS proxy request.
	condKeyXKS = "keystack:xks/"
)

type setQual int

const (
	setNone setQual = iota
	setForAll
	setForAny
)

// ccond is one compiled (operator, key, values) condition.
type ccond struct {
	name     string // operator as written, with qualifier and suffix
	failed   Reason // why the statement does not apply when the condition fails
	key      string // condition key as written
	norm     string // key in lower case: condition keys are case-insensitive
	op       operator
	ifExists bool
	set      setQual
	kind     keyKind
	sub      string // context key or tag key, in lower case
	raw      []string
	nums     []float64
	times    []time.Time
	prefixes []netip.Prefix
	globs    []glob
}

func parseKey(key string) (keyKind, string, bool) {
	lk := strings.ToLower(key)
	for _, k := range []struct {
		prefix string
		kind   keyKind
	}{{condKeyEncryptionContext, keyContext}, {condKeyPrincipalTag, keyPrincipalTag}, {condKeyResourceTag, keyResourceTag}, {condKeyXKS, keyXKS}} {
		if p := strings.ToLower(k.prefix); strings.HasPrefix(lk, p) && len(key) > len(p) {
			return k.kind, lk[len(p):], true
		}
	}
	switch lk {
	case strings.ToLower(condKeyEncryptionContextKeys):
		return keyContextKeys, "", true
	case strings.ToLower(condKeyKeyVersion):
		return keyVersion, "", true
	case strings.ToLower(condKeyCurrentTime):
		return keyTime, "", true
	case strings.ToLower(condKeySourceIP):
		return keySourceIP, "", true
	case strings.ToLower(condKeyAuthMethod):
		return keyAuthMethod, "", true
	}
	return 0, "", false
}

func compileCondition(name, key string, vals Values, path string) (ccond, error) {
	c := ccond{name: name, key: key, norm: strings.ToLower(key), raw: vals}
	c.failed = Reason{Kind: ReasonCondition, Condition: name + quoteKey(key),
		Text: "not applicable: condition " + name + quoteKey(key) + " not satisfied"}
	base := name
	if b, ok := strings.CutPrefix(base, "ForAllValues:"); ok {
		base, c.set = b, setForAll
	} else if b, ok := strings.CutPrefix(base, "ForAnyValue:"); ok {
		base, c.set = b, setForAny
	}
	if b, ok := strings.CutSuffix(base, "IfExists"); ok && b != "Null" {
		base, c.ifExists = b, true
	}
	op, ok := operators[base]
	if !ok || (c.ifExists && op.kind == opNull) {
		return c, &ValidationError{Path: path, Msg: fmt.Sprintf("unknown condition operator %q", name)}
	}
	c.op = op
	var known bool
	if c.kind, c.sub, known = parseKey(key); !known {
		return c, &ValidationError{Path: path, Msg: fmt.Sprintf("unknown condition key %q", key)}
	}
	if c.kind == keyContextKeys && c.set == setNone && op.kind != opNull {
		return c, &ValidationError{Path: path, Msg: "multi-valued key needs ForAllValues: or ForAnyValue:"}
	}
	if len(vals) == 0 {
		return c, &ValidationError{Path: path, Msg: "no values"}
	}
	for i, v := range vals {
		if err := c.addValue(v); err != nil {
			return c, &ValidationError{Path: fmt.Sprintf("%s[%d]", path, i), Msg: err.Error()}
		}
	}
	return c, nil
}

func (c *ccond) addValue(v string) error {
	switch c.op.kind {
	case opNumeric:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("bad number %q", v)
		}
		c.nums = append(c.nums, n)
	case opDate:
		t, ok := parseDate(v)
		if !ok {
			return fmt.Errorf("bad date %q (want RFC 3339 or epoch seconds)", v)
		}
		c.times = append(c.times, t)
	case opIP:
		p, err := parsePrefix(v)
		if err != nil {
			return fmt.Errorf("bad CIDR %q", v)
		}
		c.prefixes = append(c.prefixes, p)
	case opBool, opNull:
		if v != "true" && v != "false" {
			return fmt.Errorf("bad boolean %q", v)
		}
	case opStringLike:
		c.globs = append(c.globs, newGlob(v, false))
	}
	return nil
}

// parseDate accepts RFC 3339 (with or without fractional seconds), a plain
// date, or Unix epoch seconds, as IAM's date operators do.
func parseDate(v string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

func parsePrefix(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
