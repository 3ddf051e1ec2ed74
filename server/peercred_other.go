//go:build !linux

package server

import "net"

// unixPeerUser is not implemented outside Linux: Unix socket callers
// must sign their requests.
func unixPeerUser(net.Conn) string { return "" }
