package keystore

import "github.com/keystack/keystack/gate"

// Caller is gate.Caller.
//
// Deprecated: use gate.Caller.
type Caller = gate.Caller

// WithCaller is gate.WithCaller.
//
// Deprecated: use gate.WithCaller.
var WithCaller = gate.WithCaller
