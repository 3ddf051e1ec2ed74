package kmswire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AmzDateFormat is the layout of the X-Amz-Date header.
const AmzDateFormat = "20060102T150405Z"

// SigV4 is a parsed "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" Authorization header.
type SigV4 struct {
	AccessKeyID, Date, Region, Service string
	SignedHeaders                      []string
	Signature                          string
}

// ParseAuthorization parses an Authorization header signed for service.
func ParseAuthorization(h, service string) (*SigV4, *Error) {
	if h == "" {
		return nil, Errorf("MissingAuthenticationTokenException", "Request is missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return nil, Errorf("IncompleteSignatureException", "unsupported authorization scheme")
	}
	var sig SigV4
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return nil, Errorf("IncompleteSignatureException", "malformed Credential scope")
			}
			sig.AccessKeyID, sig.Date, sig.Region, sig.Service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			sig.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			sig.Signature = v
		}
	}
	if sig.AccessKeyID == "" || sig.Region == "" || len(sig.SignedHeaders) == 0 || len(sig.Signature) != 64 {
		return nil, Errorf("IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature")
	}
	if sig.Service != service {
		return nil, Errorf("IncompleteSignatureException", "credential scope names service %q, not %s", sig.Service, service)
	}
	return &sig, nil
}

// RequestTime returns the request's X-Amz-Date, which must fall on the
// credential scope's date.
func (sig *SigV4) RequestTime(r *http.Request) (time.Time, *Error) {
	t, err := time.Parse(AmzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil || t.Format("20060102") != sig.Date {
		return time.Time{}, Errorf("IncompleteSignatureException", "X-Amz-Date missing or outside the credential scope")
	}
	return t, nil
}

// Expected recomputes the signature a client holding secret would have sent
// for r with this body: it signs a copy of r carrying only the headers the
// client signed, at the client's timestamp, with aws-sdk-go-v2's signer.
// The caller compares it with sig.Signature in constant time.
func (sig *SigV4) Expected(r *http.Request, body []byte, secret string) (string, error) {
	t, aerr := sig.RequestTime(r)
	if aerr != nil {
		return "", aerr
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	req, err := http.NewRequestWithContext(context.Background(), r.Method, u.String(), io.NopCloser(bytes.NewReader(body)))
	if err != nil {
		return "", err
	}
	req.Host = r.Host
	for _, h := range sig.SignedHeaders {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			for _, v := range r.Header.Values(h) {
				req.Header.Add(h, v)
			}
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: sig.AccessKeyID, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), sig.Service, sig.Region, t); err != nil {
		return "", err
	}
	got, aerr := ParseAuthorization(req.Header.Get("Authorization"), sig.Service)
	if aerr != nil {
		return "", aerr
	}
	return got.Signature, nil
}
