# keystack: make build | make install | make demo | make test | make bench | make lint
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin/keystack
FULLBIN     := $(dir $(BIN))keystack-full
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
TESTFLAGS   ?= -count=1 -timeout 45m
# urfave_cli_no_docs leaves out urfave/cli's man-page and Markdown writers,
# which keystack never calls, and the Markdown parser (blackfriday) whose
# package initialisation every command would otherwise pay at start-up.
# make test builds the CLI the scripts run (the test binary) with it too.
BUILDTAGS   ?= urfave_cli_no_docs

.PHONY: all build install demo test test-prereqs bench bench-peers lint clean

all: build

# build makes the fast-start pair: bin/keystack, built with keystack_lite,
# links no AWS SDK, PKCS#11 library, PostgreSQL driver, key server or
# rotation daemon, is static (no cgo: no dynamic loader or libc to start)
# and execs bin/keystack-full, the complete build, for the commands that
# may need them (see README).
build:
	CGO_ENABLED=0 $(GO) build -tags '$(BUILDTAGS) keystack_lite' -o $(BIN) ./cmd/keystack
	$(GO) build -tags '$(BUILDTAGS)' -o $(FULLBIN) ./cmd/keystack

# install copies both into BINDIR (default /usr/local/bin): keystack finds
# keystack-full in its own directory, never on $PATH.
install: build
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(FULLBIN) $(DESTDIR)$(BINDIR)/keystack-full
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/keystack

demo: build
	./scripts/demo.sh $(BIN)

# test-prereqs installs what the tests need (SoftHSM2) when it is missing
# and this user can install packages; otherwise the HSM tests skip (or fail
# under CI=true) with a clear message.
test-prereqs:
	./scripts/test-prereqs.sh

test: test-prereqs
	$(GO) test -tags '$(BUILDTAGS)' $(TESTFLAGS) ./...

bench: build test-prereqs
	./scripts/bench.sh

# keystack against age and Tink only (part of make bench)
bench-peers: build
	./scripts/bench_peers.sh

# DARWIN cross-checks macOS (README: it builds and is vetted there; the
# tests run on Linux only). cgo is off, as no macOS C toolchain is
# assumed, so what needs cgo (PKCS#11: internal/pkcs11token, hsm and the
# full cmd/keystack) is left out: the lite cmd/keystack and the public
# packages whose tests need no PKCS#11 are vetted, and every other
# package that needs no PKCS#11 is built (keystore, server, xks, internal/...).
DARWIN      := GOOS=darwin GOARCH=arm64 CGO_ENABLED=0
DARWIN_VET  := . ./audit ./client ./envelope ./gate ./keyring/... ./keystore/awskms ./keystore/storagetest ./policy ./rotation
NOPKCS11    := '{{$$p := .ImportPath}}{{range .Deps}}{{if eq . "github.com/miekg/pkcs11"}}{{$$p = ""}}{{end}}{{end}}{{$$p}}'

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	CGO_ENABLED=0 $(GO) vet -tags '$(BUILDTAGS) keystack_lite' ./cmd/keystack
	CGO_ENABLED=0 $(GO) run $(STATICCHECK) -tags '$(BUILDTAGS) keystack_lite' ./cmd/keystack
	$(DARWIN) $(GO) vet -tags '$(BUILDTAGS) keystack_lite' ./cmd/keystack
	$(DARWIN) $(GO) vet $(DARWIN_VET)
	$(DARWIN) $(GO) build $$($(DARWIN) $(GO) list -f $(NOPKCS11) ./...)

clean:
	rm -rf bin
