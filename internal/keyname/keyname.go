// Package keyname is keystack's one rule for naming a master key version:
// "NAME/vN", N a decimal version from 1 without leading zeros. The
// encrypted data keys' key names, HSM object labels, policy resources and
// audit records all use it; keyring.VersionedKeyName is its public face.
package keyname

import (
	"strconv"
	"strings"
)

// Versioned returns the name of version v of key name: "name/vN".
func Versioned(name string, v int) string { return name + "/v" + strconv.Itoa(v) }

// Split splits a Versioned name into the key name and the version. A name
// that does not end in a valid "/vN" suffix is returned whole with 0.
func Split(s string) (string, int) {
	i := strings.LastIndex(s, "/v")
	if i <= 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[i+2:])
	if err != nil || n <= 0 || strconv.Itoa(n) != s[i+2:] {
		return s, 0
	}
	return s[:i], n
}
