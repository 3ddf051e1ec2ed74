// Package schedule says when keys are due for rotation: the Policy and Due
// that package rotation's Runner applies and "keystack key show" reports.
// It is apart from rotation so that the lite CLI can show due times
// without linking the Runner (whose webhooks link net/http).
package schedule

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidPolicy is returned by Policy.Validate for unusable durations.
var ErrInvalidPolicy = errors.New("rotation: invalid policy")

// jitterLabel domain-separates the jitter hash from any other use of key names.
const jitterLabel = "keystack rotation jitter v1\x00"

// Policy is a key's rotation schedule. The zero value never rotates.
type Policy struct {
	// Every is the rotation period; 0 disables scheduled rotation.
	Every time.Duration
	// Jitter spreads rotations of many keys over [Every, Every+Jitter)
	// after the last one, so a fleet created together does not rotate (and
	// call its KMS) all at once. Each key's offset is fixed by its name.
	Jitter time.Duration
	// RetireAfter is how long a superseded key version stays usable for
	// decryption before it is due for retirement; 0 keeps it forever. A
	// rotation.Runner retires a due version by disabling it.
	RetireAfter time.Duration
}

// Validate reports ErrInvalidPolicy for a negative duration, or a Jitter
// not smaller than Every (which could postpone a rotation by a whole period).
func (p Policy) Validate() error {
	switch {
	case p.Every < 0 || p.Jitter < 0 || p.RetireAfter < 0:
		return fmt.Errorf("%w: negative duration", ErrInvalidPolicy)
	case p.Every == 0 && p.Jitter != 0:
		return fmt.Errorf("%w: jitter without a rotation period", ErrInvalidPolicy)
	case p.Every > 0 && p.Jitter >= p.Every:
		return fmt.Errorf("%w: jitter %v must be smaller than the period %v", ErrInvalidPolicy, p.Jitter, p.Every)
	}
	return nil
}

// Due reports whether a key last rotated at lastRotated should be rotated at
// now, and when it is (or was) due: lastRotated + Every + the key's jitter
// offset. It is a pure function: the offset, in [0, Jitter), comes from a
// SHA-256 hash of jitterSeed (the key name), so schedules spread across keys
// but are the same on every run and every host. A zero lastRotated means
// never rotated: due at once. With Every == 0 it never is due and returns the
// zero time.
func Due(p Policy, lastRotated, now time.Time, jitterSeed string) (bool, time.Time) {
	if p.Every <= 0 {
		return false, time.Time{}
	}
	if lastRotated.IsZero() {
		return true, now
	}
	at := lastRotated.Add(p.Every + jitterOffset(p.Jitter, jitterSeed))
	return !now.Before(at), at
}

// jitterOffset maps seed to a fixed offset in [0, jitter). The modulo bias
// of a 64-bit hash is about jitter/2^64: below 2^-17 for a day of jitter.
func jitterOffset(jitter time.Duration, seed string) time.Duration {
	if jitter <= 0 {
		return 0
	}
	sum := sha256.Sum256([]byte(jitterLabel + seed))
	return time.Duration(binary.BigEndian.Uint64(sum[:8]) % uint64(jitter))
}
