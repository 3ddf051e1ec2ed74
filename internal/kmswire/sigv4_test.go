package kmswire

import (
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	good := "AWS4-HMAC-SHA256 Credential=AK/20260101/eu-west-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("a", 64)
	sig, err := ParseAuthorization(good, "kms")
	if err != nil || sig.AccessKeyID != "AK" || sig.Region != "eu-west-1" || len(sig.SignedHeaders) != 2 {
		t.Fatalf("%+v %v", sig, err)
	}
	for name, h := range map[string]string{
		"MissingAuthenticationTokenException": "",
		"IncompleteSignatureException":        "Basic xyz",
	} {
		if _, err := ParseAuthorization(h, "kms"); err == nil || err.Code != name {
			t.Errorf("%q: %v", h, err)
		}
	}
	for _, h := range []string{strings.Replace(good, "/kms/", "/s3/", 1), strings.Replace(good, "aws4_request", "x", 1),
		strings.Replace(good, strings.Repeat("a", 64), "ab", 1), strings.Replace(good, "Credential=AK", "Credential=", 1)} {
		if _, err := ParseAuthorization(h, "kms"); err == nil {
			t.Errorf("accepted %q", h)
		}
	}
}

// FuzzParseAuthorization: no header panics the parser, and an accepted
// one has every part a signature check needs.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20260101/eu-west-1/kms/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64))
	f.Add("AWS4-HMAC-SHA256 ,,,")
	f.Fuzz(func(t *testing.T, h string) {
		sig, err := ParseAuthorization(h, "kms")
		if err == nil && (sig.AccessKeyID == "" || sig.Region == "" || len(sig.Signature) != 64 || sig.Service != "kms") {
			t.Fatalf("accepted an incomplete header: %+v", sig)
		}
	})
}
