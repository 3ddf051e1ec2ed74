//go:build !linux

package main

import (
	"fmt"
	"os"
)

// rssChildEnv: see rss_linux_test.go; the RSS measurement is Linux-only
// (ru_maxrss in KiB, and its inheritance across exec, are Linux's).
const rssChildEnv = "KEYSTACK_TEST_RSS_OUT"

func rssWrap(string, []string) int {
	fmt.Fprintln(os.Stderr, "RSS measurement is Linux-only")
	return 125
}
