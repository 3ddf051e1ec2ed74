//go:build !linux

package pgtest

import (
	"errors"
	"os"
	"syscall"
)

// account is the user the server runs as: this process's, off Linux.
type account struct{}

// serverAccount refuses root off Linux: initdb does not run as root.
func serverAccount() (*account, error) {
	if os.Geteuid() == 0 {
		return nil, errors.New("pgtest: running as root is supported on Linux only (initdb refuses root)")
	}
	return nil, nil
}

func (a *account) chown(string) error { return nil }

func (a *account) sysProcAttr() *syscall.SysProcAttr { return nil }
