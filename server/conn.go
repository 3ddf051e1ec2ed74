package server

import (
	"context"
	"net"
	"sync"
)

type peerKey struct{}

// withPeer records the peer user of a Unix socket connection in the
// connection's context (http.Server.ConnContext).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitConn); ok {
		c = lc.Conn
	}
	if u := unixPeerUser(c); u != "" {
		return context.WithValue(ctx, peerKey{}, u)
	}
	return ctx
}

func peerUser(ctx context.Context) string {
	u, _ := ctx.Value(peerKey{}).(string)
	return u
}

// limitListener accepts at most n connections at once; further clients
// wait in the kernel's backlog.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func newLimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
