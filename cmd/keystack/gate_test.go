package main

import (
	"go/ast"
	"go/token"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// keyringCallRE matches the callees that build or hand out keyrings.
var keyringCallRE = regexp.MustCompile(`(^awskms\.New$|^keyring\.New|Keyrings?$)`)

// gatedPackages are the directories whose keyring sites are listed, with
// the prefix of their sites: the CLI's own, and internal/rewrap's, which
// opens the keyrings of a rewrap the CLI asks for.
var gatedPackages = map[string]string{".": "", "../../internal/rewrap": "rewrap."}

// keyringSites lists every place the CLI's own code, or a library the CLI
// leaves a command's keys to, obtains a keyring, as "FUNC → CALLEE",
// leaving out calls of the package's own functions and methods, whose
// bodies are listed in turn.
func keyringSites(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for dir, prefix := range gatedPackages {
		packageKeyringSites(t, dir, prefix, seen)
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func packageKeyringSites(t *testing.T, dir, prefix string, seen map[string]bool) {
	funcs := parseFuncs(t, token.NewFileSet(), dir)
	local := map[string]bool{}
	for _, fd := range funcs {
		local[fd.Name.Name] = true
	}
	for _, fd := range funcs {
		eachCall(fd, func(call *ast.CallExpr) {
			if site, ok := keyringSite(fd, call, local); ok {
				seen[prefix+site] = true
			}
		})
	}
}

func keyringSite(fd *ast.FuncDecl, call *ast.CallExpr, local map[string]bool) (string, bool) {
	var callee, name string
	switch fn := call.Fun.(type) {
	case *ast.Ident:
		callee, name = fn.Name, fn.Name
	case *ast.SelectorExpr:
		x := "?"
		switch e := fn.X.(type) {
		case *ast.Ident:
			x = e.Name
		case *ast.CallExpr:
			x = "(call)"
		case *ast.SelectorExpr:
			x = "?." + e.Sel.Name
		}
		callee, name = x+"."+fn.Sel.Name, fn.Sel.Name
	default:
		return "", false
	}
	if !keyringCallRE.MatchString(callee) {
		return "", false
	}
	if _, isIdent := call.Fun.(*ast.Ident); isIdent && local[name] {
		return "", false // the CLI's own function: its body is listed
	}
	return fd.Name.Name + " → " + callee, true
}

// exemptSites obtain a keyring that wraps and unwraps no data key.
var exemptSites = map[string]string{
	"hsmExportAction → t.RSAKeyring": "hsm export reads the public key of a token object the keystore does not manage",
}

// TestEveryKeyringIsGated enumerates every keyring the CLI can obtain (the
// calls that build or hand out keyrings in its non-test code) and requires
// each to be exercised under a "# gate: SITE" line of keyring_gates.txtar,
// which proves that a principal without permission is refused (exit 5)
// before any key is used and that the refusal is audited. A new way to
// build a keyring fails this test until such a proof exists.
func TestEveryKeyringIsGated(t *testing.T) {
	script, err := os.ReadFile("testdata/script/keyring_gates.txtar")
	if err != nil {
		t.Fatal(err)
	}
	proven := map[string]bool{}
	for _, line := range strings.Split(string(script), "\n") {
		if site, ok := strings.CutPrefix(line, "# gate: "); ok {
			proven[strings.TrimSpace(site)] = true
		}
	}
	sites := keyringSites(t)
	if len(sites) < 5 {
		t.Fatalf("found only %d keyring sites: the scan is broken: %q", len(sites), sites)
	}
	for _, site := range sites {
		if !proven[site] && exemptSites[site] == "" {
			t.Errorf("keyring site %q has no \"# gate: %s\" proof in keyring_gates.txtar", site, site)
		}
		delete(proven, site)
	}
	for site := range proven {
		t.Errorf("keyring_gates.txtar proves %q, which the CLI no longer has", site)
	}
}
