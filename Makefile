# Relay — common tasks. `make test` is what CI runs (.ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
CONFIG  ?= relay.example.yaml

.PHONY: run build test deps vet race bench fmt

## run: run Relay on relay.example.yaml (embedded store, no Redis needed)
run:
	$(GO) run ./cmd/relay serve -config $(CONFIG)

## build: build bin/relay
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/relay ./cmd/relay

## test: install what the tests need, then vet and race-enabled tests
test: deps vet race

## deps: make sure redis-server is there (apt-get when root and missing)
deps:
	@scripts/install-test-deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 -timeout 15m ./...

## bench: store, extractor and delivery benchmarks, plus the side-by-side ingest run
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...
