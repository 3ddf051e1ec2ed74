# keystack: make demo | make test | make bench | make lint
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin/keystack
TESTFLAGS   ?= -count=1 -timeout 45m
# urfave_cli_no_docs leaves out urfave/cli's man-page and Markdown writers,
# which keystack never calls, and the Markdown parser (blackfriday) whose
# package initialisation every command would otherwise pay at start-up.
# make test builds the CLI the scripts run (the test binary) with it too.
BUILDTAGS   ?= urfave_cli_no_docs

.PHONY: all build demo test test-prereqs bench bench-peers lint clean

all: build

build:
	$(GO) build -tags '$(BUILDTAGS)' -o $(BIN) ./cmd/keystack

demo: build
	./scripts/demo.sh $(BIN)

# test-prereqs installs what the tests need (SoftHSM2) when it is missing
# and this user can install packages; otherwise the HSM tests skip (or fail
# under CI=true) with a clear message.
test-prereqs:
	./scripts/test-prereqs.sh

test: test-prereqs
	$(GO) test -tags '$(BUILDTAGS)' $(TESTFLAGS) ./...

bench: build
	./scripts/bench.sh

# keystack against age and Tink only (part of make bench)
bench-peers: build
	./scripts/bench_peers.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin
