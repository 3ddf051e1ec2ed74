package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// endpoint is one address of a key server.
type endpoint struct {
	// url is the endpoint as given: unix:///path, https://host:port or
	// http://host:port (loopback only).
	url string
	// unix is the socket path of a unix:// endpoint.
	unix string
	// scheme is unix, https or http.
	scheme string
	// host is host:port; "localhost" for a Unix socket.
	host string
}

// parseEndpoint checks one endpoint. Plain http:// is accepted only
// for a loopback IP address or localhost: the server serves it only
// there, for tests.
func parseEndpoint(s string) (endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the whole string, user information included.
		return endpoint{}, fmt.Errorf("%w: server endpoint %q does not parse as a URL", ErrInvalidConfig, shown(s))
	}
	ep := endpoint{url: s, scheme: u.Scheme, host: u.Host}
	switch {
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return endpoint{}, fmt.Errorf("%w: server endpoint %q: no user, query or fragment allowed", ErrInvalidConfig, shown(s))
	case u.Scheme == "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return endpoint{}, fmt.Errorf("%w: server endpoint %q: want unix:///absolute/path", ErrInvalidConfig, shown(s))
		}
		ep.unix, ep.host = u.Path, "localhost"
	case u.Scheme == "https" || u.Scheme == "http":
		if u.Host == "" || (u.Path != "" && u.Path != "/") {
			return endpoint{}, fmt.Errorf("%w: server endpoint %q: want %s://host:port", ErrInvalidConfig, s, u.Scheme)
		}
		if u.Scheme == "http" && !loopback(u.Hostname()) {
			return endpoint{}, fmt.Errorf("%w: server endpoint %q: plain http only to a loopback address (tests); use https", ErrInvalidConfig, shown(s))
		}
	default:
		return endpoint{}, fmt.Errorf("%w: server endpoint %q: want unix:///path, https://host:port or http://127.0.0.1:port", ErrInvalidConfig, shown(s))
	}
	return ep, nil
}

// shown is endpoint s as an error message may quote it: without what a
// user part, query or fragment holds (a password, a token, a signature).
func shown(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?…"
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		scheme, _, ok := strings.Cut(s[:i], "://")
		if !ok {
			scheme = ""
		} else {
			scheme += "://"
		}
		s = scheme + "…@" + s[i+1:]
	}
	return s
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parseEndpoints parses a list whose items may themselves be
// comma-separated (KEYSTACK_SERVER=https://a:8443,https://b:8443).
func parseEndpoints(list []string) ([]endpoint, error) {
	var eps []endpoint
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			ep, err := parseEndpoint(s)
			if err != nil {
				return nil, err
			}
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%w: no server endpoint", ErrInvalidConfig)
	}
	return eps, nil
}

// roundTripper returns the HTTP transport of ep: a Unix socket dialer, or
// TCP with tlsConf for https.
func (ep endpoint) roundTripper(tlsConf *tls.Config, attempt time.Duration) http.RoundTripper {
	d := &net.Dialer{Timeout: dialTimeout(attempt)}
	t := &http.Transport{
		DialContext: d.DialContext, TLSHandshakeTimeout: dialTimeout(attempt),
		ResponseHeaderTimeout: attempt, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second,
		ForceAttemptHTTP2: ep.scheme == "https",
	}
	if ep.scheme == "https" {
		t.TLSClientConfig = tlsConf
	}
	if ep.unix != "" {
		path := ep.unix
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
	}
	return t
}

func dialTimeout(attempt time.Duration) time.Duration {
	return min(attempt, 3*time.Second)
}
