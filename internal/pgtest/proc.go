package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotRunning is returned by Kill when the server is not running.
var ErrNotRunning = errors.New("pgtest: the server is not running")

// Start starts the server of a stopped cluster (New starts it already) and
// waits until it accepts connections. It is a no-op when it runs.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shared {
		return ErrShared
	}
	if c.proc != nil {
		return nil
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		err := c.startOnce(deadline)
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "still in use") {
			return err
		}
		// The backends of a killed server have not all exited yet.
		time.Sleep(200 * time.Millisecond)
	}
}

// startOnce runs postgres and waits for it to accept connections, or to
// exit.
func (c *Cluster) startOnce(deadline time.Time) error {
	logf, err := os.OpenFile(c.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	before, _ := logf.Seek(0, 2)
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.DataDir(), "-p", strconv.Itoa(c.port),
		"-k", c.SocketDir(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, c.base
	cmd.SysProcAttr = c.account.sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgconn.Connect(ctx, c.SocketDSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			c.proc, c.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("pgtest: postgres exited at start (%v):\n%s", cmd.ProcessState, c.logSince(before))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("pgtest: postgres did not accept connections within %v: %v\n%s", readyTimeout, err, c.logSince(before))
		}
	}
}

func (c *Cluster) logSince(off int64) string {
	b, err := os.ReadFile(c.LogFile())
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

// Stop shuts the server down (fast shutdown: clients are disconnected,
// committed transactions kept) and waits for it to exit; after
// stopTimeout it kills it. It is a no-op when the server is stopped.
func (c *Cluster) Stop() error {
	return c.signal(syscall.SIGINT)
}

// Kill kills the server's postmaster with SIGKILL, as a crash would; its
// backends exit on their own shortly after. Start recovers the cluster
// (committed transactions survive).
func (c *Cluster) Kill() error {
	c.mu.Lock()
	running, isShared := c.proc != nil, c.shared
	c.mu.Unlock()
	if isShared {
		return ErrShared
	}
	if !running {
		return ErrNotRunning
	}
	return c.signal(syscall.SIGKILL)
}

func (c *Cluster) signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shared {
		return ErrShared
	}
	if c.proc == nil {
		return nil
	}
	proc, done := c.proc, c.done
	c.proc, c.done = nil, nil
	if err := proc.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: stopping postgres: %w", err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
		proc.Process.Kill()
		<-done
		return fmt.Errorf("pgtest: postgres did not stop within %v; killed it", stopTimeout)
	}
}

// Pid is the process id of the server's postmaster, 0 when stopped.
func (c *Cluster) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Process.Pid
}
