package pgtest

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// account is the unprivileged user a root test process runs the server as.
type account struct{ uid, gid int }

// serverAccount is nil when this process is not root (the server runs as
// this process's user), else "postgres" or "nobody".
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil && uid != 0 {
			return &account{uid: uid, gid: gid}, nil
		}
	}
	return nil, fmt.Errorf("pgtest: running as root, and neither user postgres nor nobody exists to run PostgreSQL as")
}

func (a *account) chown(path string) error {
	if a == nil {
		return nil
	}
	if err := os.Chown(path, a.uid, a.gid); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// sysProcAttr runs a child as the account, and kills it when the test
// process dies (Pdeathsig), so a crashed or timed-out test leaves no
// server behind.
func (a *account) sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if a != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}
	}
	return attr
}
