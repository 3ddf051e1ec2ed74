package policy

import (
	"slices"
	"testing"
)

// FuzzParse: Parse never panics, and an accepted policy evaluates (the
// enforcement path agreeing with Evaluate) and round-trips through
// MarshalJSON.
func FuzzParse(f *testing.F) {
	seeds := []string{
		stmts(),
		stmts(`{"Sid":"A","Effect":"Allow","Principal":["user:a","group:g"],"Action":"keystack:*","Resource":"key/*"}`),
		stmts(`{"Effect":"Deny","NotPrincipal":"user:a","NotAction":"keystack:Encrypt","NotResource":"key/a/v?","Condition":{"ForAnyValue:StringLike":{"keystack:EncryptionContextKeys":"a*"},"DateLessThanIfExists":{"keystack:CurrentTime":"2026-01-01T00:00:00Z"},"IpAddress":{"keystack:SourceIp":"10.0.0.0/8"},"NumericEquals":{"keystack:KeyVersion":[1,2]}}}`),
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}`,
		`[]`, `{`, ``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		req := base()
		want, got := p.Evaluate(req), p.decide(&req)
		if got.Effect != want.Effect || got.Implicit != want.Implicit || !slices.Equal(got.Matched, want.Matched) {
			t.Fatalf("decide %+v, Evaluate %+v", got, want)
		}
		b, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(b); err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
	})
}
