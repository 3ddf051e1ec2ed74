package policy

import "testing"

// TestXKSConditionKeys: keystack:xks/FIELD reads the request's XKS
// metadata, the key name in any case; an absent or empty field fails an
// Allow condition, and a Deny on a field applies to that value only.
func TestXKSConditionKeys(t *testing.T) {
	p, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[
 {"Sid":"AWS","Effect":"Allow","Principal":"service:xks","Action":"keystack:Encrypt","Resource":"key/*",
  "Condition":{"StringLike":{"KEYSTACK:XKS/awsPrincipalArn":"arn:aws:iam::111122223333:*"},"StringEquals":{"keystack:xks/kmsOperation":["Encrypt","GenerateDataKey"]}}},
 {"Sid":"NoVpc","Effect":"Deny","Principal":"*","Action":"*","Resource":"*",
  "Condition":{"StringEquals":{"keystack:xks/awsSourceVpc":"vpc-bad"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		xks  map[string]string
		want bool
	}{
		{map[string]string{"awsPrincipalArn": "arn:aws:iam::111122223333:role/app", "kmsOperation": "Encrypt"}, true},
		{map[string]string{"awsPrincipalArn": "arn:aws:iam::111122223333:role/app", "kmsOperation": "Encrypt", "awsSourceVpc": "vpc-ok"}, true},
		{map[string]string{"awsPrincipalArn": "arn:aws:iam::111122223333:role/app", "kmsOperation": "Encrypt", "awsSourceVpc": "vpc-bad"}, false},
		{map[string]string{"awsPrincipalArn": "arn:aws:iam::999999999999:role/app", "kmsOperation": "Encrypt"}, false},
		{map[string]string{"awsPrincipalArn": "arn:aws:iam::111122223333:role/app", "kmsOperation": "BulkEncrypt"}, false},
		{map[string]string{"kmsOperation": "Encrypt"}, false},
		{map[string]string{"awsPrincipalArn": "", "kmsOperation": "Encrypt"}, false},
	} {
		req := Request{Principal: "service:xks", Action: "keystack:Encrypt", Resource: "key/k", XKS: c.xks}
		if got := p.Evaluate(req).Allowed(); got != c.want {
			t.Errorf("%v: allowed %v, want %v", c.xks, got, c.want)
		}
		if got := p.decide(&req).Allowed(); got != c.want {
			t.Errorf("%v: decide allowed %v, want %v", c.xks, got, c.want)
		}
	}
}
