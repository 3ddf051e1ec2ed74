//go:build !freebsd

package main

import "golang.org/x/sys/unix"

// mknodNull makes a node for device 1,3 (what /dev/null is on Linux).
// Only the type of the device number differs between systems.
func mknodNull(path string, mode uint32) error {
	return unix.Mknod(path, mode, int(unix.Mkdev(1, 3)))
}
