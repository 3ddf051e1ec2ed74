//go:build !linux

package server

import "net"

// unixPeerUser is not implemented outside Linux: Unix socket callers
// must sign their requests.
func unixPeerUser(net.Conn) string { return "" }

// dirOwnerUser is not implemented outside Linux: nobody owns the store
// as far as the server's break-glass ResetPolicy is concerned.
func dirOwnerUser(string) string { return "" }
