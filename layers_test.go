package keystack_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/keystack/keystack/"

// layer is one row of the import table.
type layer struct {
	imports []string // keystack packages it may import and, through them, what they may
	tests   []string // more that its tests may import
	outside []string // modules outside the standard library its build may use; "*" any
}

// layers is the import table of the module, bottom up (README.md,
// Architecture). Every package of the module has a row. A dependency
// outside a package's row is a layering bug: move code down or into an
// interface. DO NOT add packages to a row just to make this test pass.
var layers = map[string]layer{
	"internal/clientenv": {},
	"internal/testclock": {},
	"internal/kmsarn":    {},
	"internal/schedule":  {},

	"internal/fsx":         {outside: []string{"golang.org/x/sys"}},
	"internal/keyname":     {},
	"internal/safetext":    {},
	"internal/testhook":    {},
	"internal/kmswire":     {outside: []string{"github.com/aws/"}},
	"internal/kmstest":     {imports: []string{"internal/kmswire"}},
	"internal/pgtest":      {outside: []string{"github.com/jackc/", "golang.org/x/text", "golang.org/x/sync"}},
	"envelope":             {tests: []string{"keyring", "internal/esdktest"}},
	"policy":               {imports: []string{"internal/keyname"}, tests: []string{"internal/policytest"}},
	"audit":                {outside: []string{"golang.org/x/sys"}},
	"internal/esdktest":    {imports: []string{"envelope"}},
	"internal/serverstore": {imports: []string{"envelope"}},
	"internal/gatewire":    {imports: []string{"envelope", "policy", "audit"}},
	"internal/pgaudit":     {imports: []string{"gate"}, tests: []string{"internal/pgtest", "keystore"}, outside: []string{"github.com/jackc/", "golang.org/x/text", "golang.org/x/sync"}},
	"gate":                 {imports: []string{"envelope", "policy", "internal/policyengine", "audit", "internal/fsx", "internal/gatewire"}, tests: []string{"keystore"}},

	"internal/policytest":   {},
	"internal/tokenbucket":  {},
	"internal/testca":       {},
	"internal/policyengine": {imports: []string{"policy"}, tests: []string{"internal/policytest"}},

	"internal/rawaes":     {imports: []string{"envelope"}},
	"keyring":             {imports: []string{"envelope", "internal/keyname", "internal/rawaes"}, tests: []string{"keyring/keyringtest", "internal/testclock"}},
	"keyring/keyringtest": {imports: []string{"envelope", "keyring"}},

	"internal/pkcs11token": {imports: []string{"envelope", "keyring"}, tests: []string{"keyring/keyringtest", "keystore"},
		outside: []string{"github.com/miekg/pkcs11"}},
	"hsm": {imports: []string{"envelope", "keyring", "internal/pkcs11token"}, outside: []string{"github.com/miekg/pkcs11"}},
	"keystore/awskms": {imports: []string{"envelope", "keyring", "internal/safetext", "internal/kmsarn"},
		tests:   []string{"keyring/keyringtest", "keystore", "internal/kmstest"},
		outside: []string{"github.com/aws/"}},

	"keystore": {imports: []string{"envelope", "keyring", "gate", "internal/fsx", "internal/testhook", "internal/serverstore", "internal/gatewire"},
		tests:   []string{"hsm", "keystore/awskms", "keystore/storagetest", "keyring/keyringtest", "internal/esdktest", "internal/testclock"},
		outside: []string{"golang.org/x/crypto", "golang.org/x/sys"}},
	"keystore/storagetest": {imports: []string{"keystore"}},
	"internal/lazybackend": {imports: []string{"keystore"}},
	"internal/pgstorage": {imports: []string{"keystore"}, tests: []string{"keystore/storagetest", "internal/pgtest"},
		outside: []string{"github.com/jackc/", "golang.org/x/text", "golang.org/x/sync"}},

	"rotation":         {imports: []string{"keystore", "internal/rewrap", "internal/schedule"}, tests: []string{"internal/testclock"}},
	"internal/pglease": {imports: []string{"rotation", "internal/rotationd", "internal/pgstorage"}, tests: []string{"internal/pgtest"}},
	"server":           {imports: []string{"keystore", "internal/kmswire", "internal/tokenbucket"}, tests: []string{"internal/testca", "internal/kmstest", "hsm"}},
	"xks":              {imports: []string{"keystore", "internal/kmswire", "internal/tokenbucket"}, tests: []string{"internal/testca", "hsm"}},

	"internal/msgtree":   {imports: []string{"envelope", "internal/fsx"}, tests: []string{"keyring"}},
	"internal/inventory": {imports: []string{"keystore", "internal/msgtree"}, tests: []string{"internal/rewrap"}},
	"internal/rewrap":    {imports: []string{"keystore", "internal/fsx", "internal/msgtree", "internal/inventory"}, tests: []string{"internal/esdktest"}},
	"internal/rotationd": {imports: []string{"rotation"}},

	"client": {imports: []string{"envelope", "keyring", "keystore/awskms", "audit", "internal/safetext", "internal/clientenv"},
		tests: []string{"server", "keystore", "policy"}, outside: []string{"github.com/aws/"}},

	"cmd/keystack": {imports: []string{"*"}, tests: []string{"*"}, outside: []string{"*"}},
}

// TestImportLayers checks every package of the module, and every test
// build, against its row of layers, using the dependency sets that
// `go list -deps -test` lists. A test build of p (p's own tests, p_test,
// and packages rebuilt for p.test) is held to p's row with its tests
// entries; tests may use any outside module.
func TestImportLayers(t *testing.T) {
	pkgs := goList(t)
	std := map[string]bool{}
	for _, p := range pkgs {
		std[p.ImportPath] = p.Standard
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		name, _, _ := strings.Cut(p.ImportPath, " [")
		rel, ok := strings.CutPrefix(strings.TrimSuffix(name, "_test"), module)
		if !ok || strings.HasSuffix(name, ".test") {
			continue // outside the module, or a generated test main
		}
		if _, ok := layers[rel]; !ok {
			t.Errorf("package %s has no row in layers: add one that says what it may import", rel)
			continue
		}
		seen[rel] = true
		row := rel
		if p.ForTest != "" {
			row = strings.TrimPrefix(p.ForTest, module)
		}
		for _, d := range p.Deps {
			d, _, _ = strings.Cut(d, " [")
			if d == module+rel || d == module+row {
				continue
			}
			if msg := check(row, d, p.ForTest != "" || name != p.ImportPath || strings.HasSuffix(name, "_test"), std[d]); msg != "" {
				t.Errorf("%s: %s", p.ImportPath, msg)
			}
		}
	}
	for rel := range layers {
		if !seen[rel] {
			t.Errorf("layers has a row for %s, which go list did not find", rel)
		}
	}
}

// check says why package rel may not depend on d, or "".
func check(rel, d string, test, std bool) string {
	if dr, ok := strings.CutPrefix(d, module); ok {
		if dr == rel || allowed(rel, test)[dr] || allowed(rel, test)["*"] {
			return ""
		}
		return "imports " + dr + ", outside its row"
	}
	if std || test || d == strings.TrimSuffix(module, "/") {
		return ""
	}
	for _, o := range outsideOf(rel) {
		if o == "*" || strings.HasPrefix(d, o) {
			return ""
		}
	}
	return "uses " + d + ", a module outside its row"
}

// allowed is the keystack packages rel may depend on: its row, and the
// rows of the packages its row names, transitively.
func allowed(rel string, test bool) map[string]bool {
	set := map[string]bool{}
	var add func(p string)
	add = func(p string) {
		for _, q := range layers[p].imports {
			if !set[q] {
				set[q] = true
				add(q)
			}
		}
	}
	add(rel)
	if test {
		for _, q := range layers[rel].tests {
			set[q] = true
			add(q)
		}
	}
	return set
}

// outsideOf is the outside modules rel's build may use: its own and those
// of the packages it may import.
func outsideOf(rel string) []string {
	out := slices.Clone(layers[rel].outside)
	for q := range allowed(rel, false) {
		out = append(out, layers[q].outside...)
	}
	return out
}

// listed is what TestImportLayers reads of go list's JSON.
type listed struct {
	ImportPath string
	ForTest    string // set on packages rebuilt for a test binary
	Standard   bool
	Deps       []string
}

// goList runs go list -deps -test -json over the module.
func goList(t *testing.T) []listed {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-test", "-json=ImportPath,ForTest,Standard,Deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < len(layers) {
		t.Fatalf("go list returned %d packages", len(pkgs))
	}
	return pkgs
}
