// Package rotation plans and runs the rotation of a keystore's keys, and
// moves messages to new keys without touching their bodies.
//
// # Rotation
//
// A key's schedule is a [Policy]; [Due] says when a key is due under it.
// A [Runner] makes passes over a [keystore.Store]: each due key gets a new
// primary version, checked again under the store's lock, so concurrent
// passes in any number of processes rotate a key once. The same pass
// retires, under Policy.RetireAfter, the decrypt-only versions superseded
// longer than it: they are disabled (reversibly, never destroyed).
// [Runner.RunOnce] returns a [RunReport].
//
// # Rewrap
//
// [Rewrap] moves every message under a set of paths to the keys of a
// store (re-encrypting only the data key, in place when the header keeps
// its size); [RewrapPaths] and [RewrapFile] do it with keyrings the caller
// opened. A crash leaves each file holding its old or its new message.
package rotation
