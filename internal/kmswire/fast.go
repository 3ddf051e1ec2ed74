package kmswire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Verifier checks SigV4 signatures. The common request (no query, an
// unescaped path, each signed header once without excess spaces, sorted
// lowercase names, no session token) is canonicalized directly and
// signed with a cached signing key; every other request is re-signed
// with aws-sdk-go-v2 (SigV4.Expected). Both give the same signature
// (TestSigV4FastPath). Signing keys are cached by the secret itself
// with the date, Region and service, never by access key ID, so a
// secret changed under the same access key ID is never checked with the
// old key. The zero Verifier is ready; it is safe for concurrent use.
type Verifier struct {
	keys signingKeys
}

// Verify reports whether sig.Signature is the signature of r with body
// under secret, comparing in constant time. It checks neither the
// request time against a clock nor which headers are signed: callers
// do. An error means the signature could not be computed.
func (v *Verifier) Verify(r *http.Request, sig *SigV4, body []byte, secret string) (bool, error) {
	want, err := v.Expected(r, sig, body, secret)
	if err != nil {
		return false, err
	}
	return hmac.Equal([]byte(want), []byte(sig.Signature)), nil
}

// Expected returns the SigV4 signature of r with body under secret.
func (v *Verifier) Expected(r *http.Request, sig *SigV4, body []byte, secret string) (string, error) {
	canon, ok := canonicalRequest(r, sig, body)
	t, aerr := sig.RequestTime(r)
	if !ok || aerr != nil {
		return sig.Expected(r, body, secret)
	}
	scope := sig.Date + "/" + sig.Region + "/" + sig.Service + "/aws4_request"
	sum := sha256.Sum256(canon)
	sts := make([]byte, 0, 128)
	sts = append(sts, "AWS4-HMAC-SHA256\n"...)
	sts = t.AppendFormat(sts, AmzDateFormat)
	sts = append(append(append(sts, '\n'), scope...), '\n')
	sts = hex.AppendEncode(sts, sum[:])
	mac := hmac.New(sha256.New, v.keys.get(secret, sig))
	mac.Write(sts)
	return hex.EncodeToString(mac.Sum(nil)), nil
}

// sdkIgnored are the headers aws-sdk-go-v2's signer never signs.
var sdkIgnored = []string{"authorization", "user-agent", "x-amzn-trace-id", "expect", "transfer-encoding"}

// canonicalRequest returns r's SigV4 canonical request, or false when r
// is not the common request Verifier canonicalizes itself.
func canonicalRequest(r *http.Request, sig *SigV4, body []byte) ([]byte, bool) {
	if r.URL.RawPath != "" || r.URL.RawQuery != "" || r.URL.ForceQuery || r.Header.Get("X-Amz-Security-Token") != "" ||
		!slices.IsSorted(sig.SignedHeaders) {
		return nil, false
	}
	b := make([]byte, 0, 512)
	b = append(append(append(b, r.Method...), '\n'), r.URL.Path...)
	b = append(b, "\n\n"...)
	prev := ""
	for _, name := range sig.SignedHeaders {
		if name == prev || name != strings.ToLower(name) || slices.Contains(sdkIgnored, name) {
			return nil, false
		}
		prev = name
		var v string
		switch name {
		case "host":
			v = strings.TrimSuffix(r.Host, ":80")
		case "content-length":
			if len(body) == 0 {
				return nil, false
			}
			v = strconv.Itoa(len(body))
		default:
			vs := r.Header.Values(name)
			if len(vs) != 1 || vs[0] == "" || strings.TrimSpace(vs[0]) != vs[0] || strings.Contains(vs[0], "  ") {
				return nil, false
			}
			v = vs[0]
		}
		b = append(append(append(append(b, name...), ':'), v...), '\n')
	}
	b = append(append(b, '\n'), strings.Join(sig.SignedHeaders, ";")...)
	sum := sha256.Sum256(body)
	return hex.AppendEncode(append(b, '\n'), sum[:]), true
}

// signingKeys caches SigV4 signing keys (the HMAC chain over the secret,
// date, Region and service).
type signingKeys struct {
	mu sync.Mutex
	m  map[signingScope][]byte
}

// signingScope keys the cache by the secret itself: a secret rotated
// under the same access key ID is a different entry.
type signingScope struct{ secret, date, region, service string }

// maxSigningKeys bounds the cache: the scope is the client's (its Region
// is unchecked until the signature is), so a full cache is emptied.
const maxSigningKeys = 64

func (c *signingKeys) get(secret string, sig *SigV4) []byte {
	id := signingScope{secret, sig.Date, sig.Region, sig.Service}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.m[id]; ok {
		return k
	}
	k := []byte("AWS4" + secret)
	for _, part := range []string{sig.Date, sig.Region, sig.Service, "aws4_request"} {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(part))
		k = mac.Sum(nil)
	}
	if len(c.m) >= maxSigningKeys || c.m == nil {
		c.m = map[signingScope][]byte{}
	}
	c.m[id] = k
	return k
}
