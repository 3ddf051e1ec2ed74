package main

import "golang.org/x/sys/unix"

// mknodNull makes a node for device 1,3; FreeBSD's device number is a
// uint64 where Linux's and macOS's is an int.
func mknodNull(path string, mode uint32) error {
	return unix.Mknod(path, mode, unix.Mkdev(1, 3))
}
