//go:build linux

package server

import (
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// unixPeerUser returns the user name (or "uid-N") of the process at the
// other end of a Unix socket connection, from SO_PEERCRED.
func unixPeerUser(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ""
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ""
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return ""
	}
	return userName(cred.Uid)
}

// dirOwnerUser returns the user name (or "uid-N") that owns dir, spelled
// as unixPeerUser spells a peer, or "" if it cannot tell.
func dirOwnerUser(dir string) string {
	fi, err := os.Stat(dir)
	if dir == "" || err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return userName(st.Uid)
}

// userName is the name of uid, or "uid-N" when it has none.
func userName(id uint32) string {
	uid := strconv.FormatUint(uint64(id), 10)
	if u, err := user.LookupId(uid); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid-" + uid
}
