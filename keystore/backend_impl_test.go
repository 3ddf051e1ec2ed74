package keystore_test

import (
	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/awskms"
)

// The real backends implement the capabilities the store looks for; they
// do not import keystore, so the assertions live here.
var (
	_ keystore.Backend          = (*hsm.Backend)(nil)
	_ keystore.VersionGenerator = (*hsm.Backend)(nil)
	_ keystore.VersionDestroyer = (*hsm.Backend)(nil)
	_ keystore.Backend          = (*awskms.Backend)(nil)
	_ keystore.OnDemandRotator  = (*awskms.Backend)(nil)
	_ keystore.AutoRotator      = (*awskms.Backend)(nil)
	_ keystore.RefResolver      = (*awskms.Backend)(nil)
)
