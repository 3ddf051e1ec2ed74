package awskms

import (
	"strings"
	"testing"
)

func FuzzParseARN(f *testing.F) {
	for _, s := range []string{
		"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
		"arn:aws-cn:kms:cn-north-1:111122223333:alias/app/x",
		"arn:aws:kms:us-east-1:111122223333:key/", "arn:aws:s3:::bucket", "", "arn:::::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseARN(s)
		if err != nil {
			return
		}
		if a.raw != s || a.partition == "" || a.region == "" || a.account == "" || a.resourceID == "" {
			t.Fatalf("accepted %q as %+v", s, a)
		}
		if a.isMRK() != (a.isKey() && strings.HasPrefix(a.resourceID, "mrk-")) || !mrkMatch(a, a) {
			t.Fatalf("inconsistent %+v", a)
		}
	})
}

func TestMRKMatch(t *testing.T) {
	const mrkEast = "arn:aws:kms:us-east-1:111122223333:key/mrk-abc"
	cases := []struct {
		b    string
		want bool
	}{
		{"arn:aws:kms:eu-west-1:111122223333:key/mrk-abc", true},
		{"arn:aws:kms:eu-west-1:444455556666:key/mrk-abc", false},
		{"arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-abc", false},
		{"arn:aws:kms:eu-west-1:111122223333:key/mrk-abd", false},
		{"arn:aws:kms:eu-west-1:111122223333:alias/mrk-abc", false},
	}
	a, _ := parseARN(mrkEast)
	for _, tc := range cases {
		b, err := parseARN(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := mrkMatch(a, b); got != tc.want {
			t.Errorf("mrkMatch(%s, %s) = %v", mrkEast, tc.b, got)
		}
	}
	long := "arn:aws:kms:us-east-1:1:key/" + strings.Repeat("x", maxARNLen)
	if _, err := parseARN(long); err == nil {
		t.Fatal("accepted an oversized ARN")
	}
}
