package kmstest

import (
	"crypto/hmac"
	"net/http"

	"github.com/keystack/keystack/internal/kmswire"
)

// authenticate checks the SigV4 header and returns the Region of its scope.
func (s *Server) authenticate(r *http.Request, body []byte) (string, error) {
	sig, aerr := kmswire.ParseAuthorization(r.Header.Get("Authorization"), "kms")
	if aerr != nil {
		return "", aerr
	}
	if sig.AccessKeyID != s.akid {
		return "", errf("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if !s.verifySig {
		return sig.Region, nil
	}
	want, err := sig.Expected(r, body, s.secret)
	if err != nil {
		return "", errf("IncompleteSignatureException", "%v", err)
	}
	if !hmac.Equal([]byte(want), []byte(sig.Signature)) {
		return "", errf("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
	}
	return sig.Region, nil
}
