package keyname

import "testing"

func TestVersionedRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		v    int
	}{{"payments", 1}, {"a/vb", 12}, {"x/v3", 7}} {
		s := Versioned(c.name, c.v)
		if name, v := Split(s); name != c.name || v != c.v {
			t.Errorf("Split(%q) = %q, %d; want %q, %d", s, name, v, c.name, c.v)
		}
	}
	if got := Versioned("payments", 2); got != "payments/v2" {
		t.Errorf("Versioned = %q, want payments/v2", got)
	}
}

// Names without a valid version suffix come back whole, with version 0.
func TestSplitRefusesBadVersions(t *testing.T) {
	for _, s := range []string{"payments", "/v1", "k/v0", "k/v01", "k/v-1", "k/v+1", "k/v", "k/vx", "k/v1 "} {
		if name, v := Split(s); name != s || v != 0 {
			t.Errorf("Split(%q) = %q, %d; want it whole with 0", s, name, v)
		}
	}
}
