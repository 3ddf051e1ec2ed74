//go:build !linux

package main

import "os"

// growPipe is Linux's F_SETPIPE_SZ elsewhere: nothing.
func growPipe(*os.File) {}
