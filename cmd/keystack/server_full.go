//go:build !keystack_lite

package main

// The running key server and XKS proxy of server.go's `keystack server`,
// which link packages server and xks; the lite build hands the command to
// keystack-full (handoff_lite.go) and links services_lite.go instead.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/pkcs11token"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
	"github.com/keystack/keystack/xks"
)

// The defaults of --region and --account.
const (
	defaultRegion  = server.DefaultRegion
	defaultAccount = server.DefaultAccount
)

func serverRun(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	lc, err := listenConfig(c)
	if err != nil {
		return err
	}
	certs, err := certPrincipals(c.StringSlice("client-cert-principal"))
	if err != nil {
		return err
	}
	stores, err := customKeyStores(c.StringSlice("custom-key-store"))
	if err != nil {
		return err
	}
	stopsGracefully(c)
	hupReloads(c)
	if err := migrateStorage(c); err != nil {
		return err
	}
	return withStore(c, func(st *keystore.Store) error {
		return serveStore(c, st, lc, server.Config{CertPrincipals: certs, CustomKeyStores: stores})
	})
}

// stopsGracefully (also of rotate daemon) marks the running command as one that finishes its work
// and returns by itself after SIGTERM or SIGINT.
func stopsGracefully(c *cli.Context) {
	if w := interruptsOf(c); w != nil {
		w.graceful.Store(true)
		w.arm()
	}
}

// hupReloads marks the running command as one that handles SIGHUP itself
// (keystack server reloads certificates) instead of stopping on it.
func hupReloads(c *cli.Context) {
	if w := interruptsOf(c); w != nil {
		w.hup.Store(true)
		w.arm()
	}
}

// serveStore serves st until a stop signal; base holds the parsed
// certificate principals and custom key stores.
func serveStore(c *cli.Context, st *keystore.Store, lc server.ListenConfig, base server.Config) error {
	if err := st.Unlock(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	xh, err := xksHandler(c, st, &lc, log)
	if err != nil {
		return err
	}
	cfg := server.Config{Store: st, Region: c.String("region"), Account: c.String("account"), Logger: log,
		RateLimit: c.Float64("rate-limit"), RateBurst: c.Int("rate-burst"), CertPrincipals: base.CertPrincipals,
		CustomKeyStores: base.CustomKeyStores}
	if xh != nil {
		cfg.XKS = xh
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reload := make(chan struct{}, 1)
	lc.ReloadCerts = reload
	go forwardHUP(ctx, reload, func() { reloadXKS(c, xh, log) })
	lc.Ready = func(addrs []string) { log.Info("keystack server listening", "addresses", addrs) }
	err = srv.Serve(ctx, lc)
	log.Info("keystack server stopped")
	return err
}

// forwardHUP turns SIGHUP into certificate reloads, and calls onHUP,
// until ctx is done.
func forwardHUP(ctx context.Context, reload chan<- struct{}, onHUP func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			onHUP()
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}
}

// customKeyStores parses --custom-key-store ID=URI values: the URI names
// a token only and carries no PIN.
func customKeyStores(vals []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range vals {
		id, uri, ok := strings.Cut(v, "=")
		u, err := pkcs11token.ParseURI(uri)
		switch {
		case !ok || id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool {
			return !(r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		}):
			return nil, usagef("--custom-key-store: want ID=pkcs11:token=…, ID of 1-64 letters, digits, - or _")
		case err != nil:
			return nil, usagef("--custom-key-store %s: %v", id, err)
		case u.Object != "" || len(u.ID) > 0 || u.Type != "" || strings.Contains(strings.ToLower(uri), "pin-value"):
			return nil, usagef("--custom-key-store %s: the URI names the token only (no object=, id=, type= or pin-value)", id)
		case m[id] != "":
			return nil, usagef("--custom-key-store %s given twice", id)
		}
		m[id] = uri
	}
	return m, nil
}

// certPrincipals parses --client-cert-principal SHA256=PRINCIPAL values.
func certPrincipals(vals []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range vals {
		hash, p, ok := strings.Cut(v, "=")
		raw, err := hex.DecodeString(hash)
		if !ok || err != nil || len(raw) != sha256.Size || p == "" {
			return nil, usagef("--client-cert-principal %q: want the 64 hex digits of a SHA-256, '=', a principal", v)
		}
		m[strings.ToLower(hash)] = p
	}
	return m, nil
}

func listenConfig(c *cli.Context) (server.ListenConfig, error) {
	mode, err := strconv.ParseUint(c.String("unix-mode"), 8, 32)
	if err != nil || mode > 0o777 {
		return server.ListenConfig{}, usagef("--unix-mode %q is not octal permission bits", c.String("unix-mode"))
	}
	lc := server.ListenConfig{Unix: c.String("unix"), UnixMode: os.FileMode(mode),
		TLSAddr: c.String("listen"), CertFile: c.String("tls-cert"), KeyFile: c.String("tls-key"), TLS12: c.Bool("tls12"),
		ClientCAFile: c.String("client-ca"), RequireClientCert: c.Bool("require-client-cert"),
		HTTPAddr: c.String("insecure-http-loopback"), MetricsAddr: c.String("metrics-addr"), MaxConns: c.Int("max-conns"), DrainTimeout: c.Duration("drain-timeout")}
	switch {
	case lc.Unix == "" && lc.TLSAddr == "" && lc.HTTPAddr == "":
		return lc, usagef("keystack server needs --unix, --listen or --insecure-http-loopback")
	case lc.TLSAddr != "" && (lc.CertFile == "" || lc.KeyFile == ""):
		return lc, usagef("--listen needs --tls-cert and --tls-key")
	case c.Float64("rate-limit") < 0 || c.Int("rate-burst") < 0:
		return lc, usagef("--rate-limit and --rate-burst cannot be negative")
	case lc.RequireClientCert && lc.ClientCAFile == "":
		return lc, usagef("--require-client-cert needs --client-ca")
	case lc.HTTPAddr != "" && !loopbackAddr(lc.HTTPAddr):
		return lc, usagef("--insecure-http-loopback %q: plain HTTP is served only on a loopback IP address and port (127.0.0.1:PORT, [::1]:PORT)", lc.HTTPAddr)
	}
	return lc, nil
}

// loopbackAddr reports whether addr is a loopback IP and a port: a bad
// --insecure-http-loopback is a usage error, found before the keystore is
// unsealed (package server refuses it again).
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// xksHandler loads --xks-config, if given, into the XKS proxy handler,
// which the TLS listener consults at each handshake for the prefixes'
// mutual TLS.
func xksHandler(c *cli.Context, st *keystore.Store, lc *server.ListenConfig, log *slog.Logger) (*xks.Handler, error) {
	path := c.String("xks-config")
	if path == "" {
		return nil, nil
	}
	cfg, err := loadXKS(c)
	if err != nil {
		return nil, usagef("--xks-config: %v", err)
	}
	h := xks.New(cfg, st)
	h.Logger = log
	lc.ClientCerts = h
	return h, nil
}

// loadXKS reads --xks-config. A prefix with mutual TLS cannot share the
// TLS listener with --client-ca, whose handshake verifies every client
// certificate against the keystack client CA and would refuse AWS KMS's.
func loadXKS(c *cli.Context) (*xks.Config, error) {
	cfg, err := xks.LoadConfig(c.String("xks-config"))
	if err != nil {
		return nil, err
	}
	if c.String("client-ca") != "" {
		for _, p := range cfg.Prefixes {
			if p.MTLS != nil {
				return nil, fmt.Errorf("%w: prefix %q has mtls, which cannot be combined with --client-ca on one listener", xks.ErrConfig, p.Path)
			}
		}
	}
	return cfg, nil
}

// reloadXKS rereads --xks-config into h on SIGHUP: credentials, keys,
// prefixes and mutual TLS change without a restart (mutual TLS for the
// connections opened after it). A file that fails to load leaves the
// running configuration in service.
func reloadXKS(c *cli.Context, h *xks.Handler, log *slog.Logger) {
	if h == nil {
		return
	}
	cfg, err := loadXKS(c)
	if err != nil {
		log.Warn("xks configuration not reloaded", "error", err)
		return
	}
	h.SetConfig(cfg)
	log.Info("xks configuration reloaded", "prefixes", len(cfg.Prefixes))
}
