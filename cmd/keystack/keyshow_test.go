package main

import (
	"testing"
	"time"

	"github.com/keystack/keystack/keystore"
)

// TestViewRotation: the next rotation is due a period plus the key's
// jitter offset after the last one (or the creation), as the daemon
// computes it; KMS automatic rotation and no period have no due time.
func TestViewRotation(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	last := created.Add(48 * time.Hour)
	rs := &keystore.RotationSettings{Every: 720 * time.Hour, Jitter: time.Hour}
	for _, tc := range []struct {
		last time.Time
		from time.Time
	}{{last, last}, {time.Time{}, created}} {
		v := viewRotation(&keystore.KeyInfo{Name: "k", Created: created, LastRotated: tc.last, Rotation: rs})
		lo, hi := tc.from.Add(720*time.Hour), tc.from.Add(721*time.Hour)
		if v.NextDue.Before(lo) || !v.NextDue.Before(hi) {
			t.Errorf("last %v: next due %v outside [%v, %v)", tc.last, v.NextDue, lo, hi)
		}
	}
	kms := viewRotation(&keystore.KeyInfo{Rotation: &keystore.RotationSettings{Every: 2160 * time.Hour, KMSAutomatic: true}})
	if !kms.NextDue.IsZero() || !kms.KMSAutomatic {
		t.Errorf("KMS automatic: %+v", kms)
	}
	if viewRotation(&keystore.KeyInfo{}) != nil {
		t.Error("no settings: want nil")
	}
}
