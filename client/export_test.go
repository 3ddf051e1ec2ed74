package client

// Internals the external tests check directly.
var (
	Idempotent     = idempotent
	DefaultRounds  = defaultRounds
	DefaultBackoff = defaultBackoff
	// DefaultAttemptTimeout is the default wait for one endpoint.
	DefaultAttemptTimeout = defaultAttemptTimeout
)

// CheckEndpoint is parseEndpoint without its result.
func CheckEndpoint(s string) error {
	_, err := parseEndpoint(s)
	return err
}

// EndpointUnixPaths parses list as Config.Endpoints is parsed and returns
// each endpoint's Unix socket path ("" for others).
func EndpointUnixPaths(list []string) ([]string, error) {
	eps, err := parseEndpoints(list)
	var paths []string
	for _, ep := range eps {
		paths = append(paths, ep.unix)
	}
	return paths, err
}
