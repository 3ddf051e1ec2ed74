package client

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keystack/keystack/internal/clientenv"
)

// ErrNoServer is FromEnv's answer when KEYSTACK_SERVER is unset or
// empty: the application should use its local keystore, or fail.
var ErrNoServer = errors.New("client: KEYSTACK_SERVER is not set")

// ConfigFromEnv returns the Config the keystack CLI would use: endpoints
// from KEYSTACK_SERVER (comma-separated for failover), TLS files from
// KEYSTACK_SERVER_CA, KEYSTACK_CLIENT_CERT and KEYSTACK_CLIENT_KEY, the
// SigV4 Region from KEYSTACK_SERVER_REGION, the call timeout (a Go
// duration) from KEYSTACK_SERVER_TIMEOUT, and the access key from
// KEYSTACK_ACCESS_KEY_ID and KEYSTACK_SECRET_ACCESS_KEY. The AWS
// credential chain is never read. It fails with ErrNoServer when
// KEYSTACK_SERVER is unset, and with ErrInvalidConfig for a bad value.
func ConfigFromEnv() (Config, error) {
	list := strings.TrimSpace(os.Getenv(clientenv.Server))
	if strings.Trim(list, ", ") == "" {
		return Config{}, ErrNoServer
	}
	eps, err := parseEndpoints([]string{list})
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Region: os.Getenv(clientenv.ServerRegion), CAFile: os.Getenv(clientenv.ServerCA),
		CertFile: os.Getenv(clientenv.ClientCert), KeyFile: os.Getenv(clientenv.ClientKey),
		AccessKeyID: os.Getenv(clientenv.AccessKeyID), SecretAccessKey: os.Getenv(clientenv.SecretKey)}
	for _, ep := range eps {
		cfg.Endpoints = append(cfg.Endpoints, ep.url)
	}
	if s := os.Getenv(clientenv.ServerTimeout); s != "" {
		if cfg.Timeout, err = time.ParseDuration(s); err != nil || cfg.Timeout <= 0 {
			return Config{}, fmt.Errorf("%w: %s=%q: want a positive duration such as 10s", ErrInvalidConfig, clientenv.ServerTimeout, s)
		}
	}
	return cfg, nil
}

// FromEnv returns a Client configured by ConfigFromEnv.
func FromEnv() (*Client, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return New(cfg)
}
