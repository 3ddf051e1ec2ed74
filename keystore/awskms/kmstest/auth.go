package kmstest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sigV4 is a parsed "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" Authorization header (AWS Signature Version 4).
type sigV4 struct {
	akid, date, region, service string
	signedHeaders               []string
	signature                   string
}

func parseAuthorization(h string) (*sigV4, *apiError) {
	if h == "" {
		return nil, errf("MissingAuthenticationTokenException", "Request is missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return nil, errf("IncompleteSignatureException", "unsupported authorization scheme")
	}
	var sig sigV4
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return nil, errf("IncompleteSignatureException", "malformed Credential scope")
			}
			sig.akid, sig.date, sig.region, sig.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			sig.signedHeaders = strings.Split(v, ";")
		case "Signature":
			sig.signature = v
		}
	}
	if sig.akid == "" || sig.region == "" || len(sig.signedHeaders) == 0 || len(sig.signature) != 64 {
		return nil, errf("IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature")
	}
	if sig.service != "kms" {
		return nil, errf("IncompleteSignatureException", "credential scope names service %q, not kms", sig.service)
	}
	return &sig, nil
}

// authenticate checks the SigV4 header and returns the Region of its scope.
func (s *Server) authenticate(r *http.Request, body []byte) (string, error) {
	sig, aerr := parseAuthorization(r.Header.Get("Authorization"))
	if aerr != nil {
		return "", aerr
	}
	if sig.akid != s.akid {
		return "", errf("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if !s.verifySig {
		return sig.region, nil
	}
	want, err := s.resign(r, body, sig)
	if err != nil {
		return "", errf("IncompleteSignatureException", "%v", err)
	}
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return "", errf("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
	}
	return sig.region, nil
}

// resign signs a copy of r carrying only the headers the client signed, with
// the client's timestamp, and returns the resulting signature.
func (s *Server) resign(r *http.Request, body []byte, sig *sigV4) (string, error) {
	t, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || t.Format("20060102") != sig.date {
		return "", errf("IncompleteSignatureException", "X-Amz-Date missing or outside the credential scope")
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	req, err := http.NewRequestWithContext(context.Background(), r.Method, u.String(), io.NopCloser(bytes.NewReader(body)))
	if err != nil {
		return "", err
	}
	req.Host = r.Host
	for _, h := range sig.signedHeaders {
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
	creds := aws.Credentials{AccessKeyID: s.akid, SecretAccessKey: s.secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	err = v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", sig.region, t)
	if err != nil {
		return "", err
	}
	got, aerr := parseAuthorization(req.Header.Get("Authorization"))
	if aerr != nil {
		return "", aerr
	}
	return got.signature, nil
}
