# keystack: make demo | make test | make bench | make lint
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin/keystack
TESTFLAGS   ?= -count=1 -timeout 45m

.PHONY: all build demo test test-prereqs bench bench-peers lint clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/keystack

demo: build
	./scripts/demo.sh $(BIN)

# test-prereqs installs what the tests need (SoftHSM2) when it is missing
# and this user can install packages; otherwise the HSM tests skip (or fail
# under CI=true) with a clear message.
test-prereqs:
	./scripts/test-prereqs.sh

test: test-prereqs
	$(GO) test $(TESTFLAGS) ./...

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
