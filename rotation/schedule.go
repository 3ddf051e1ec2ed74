package rotation

import (
	"time"

	"github.com/keystack/keystack/internal/schedule"
)

// Policy is a key's rotation schedule; the zero value never rotates. Every
// is the rotation period (0 disables scheduled rotation). Jitter spreads
// rotations of many keys over [Every, Every+Jitter) after the last one, so
// a fleet created together does not rotate (and call its KMS) all at once;
// each key's offset is fixed by its name. RetireAfter is how long a
// superseded key version stays usable for decryption before it is due for
// retirement (0 keeps it forever); a Runner retires a due version by
// disabling it.
//
// Its Validate method reports ErrInvalidPolicy for a negative duration, or
// a Jitter not smaller than Every (which could postpone a rotation by a
// whole period).
type Policy = schedule.Policy

// ErrInvalidPolicy is returned by Policy.Validate for unusable durations.
var ErrInvalidPolicy = schedule.ErrInvalidPolicy

// Due reports whether a key last rotated at lastRotated should be rotated at
// now, and when it is (or was) due: lastRotated + Every + the key's jitter
// offset. It is a pure function: the offset, in [0, Jitter), comes from a
// SHA-256 hash of jitterSeed (the key name), so schedules spread across keys
// but are the same on every run and every host. A zero lastRotated means
// never rotated: due at once. With Every == 0 it never is due and returns the
// zero time.
func Due(p Policy, lastRotated, now time.Time, jitterSeed string) (bool, time.Time) {
	return schedule.Due(p, lastRotated, now, jitterSeed)
}
