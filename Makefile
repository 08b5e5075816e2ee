# Relay — common tasks. `make test` is what CI runs (.ci/run). `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
CONFIG  ?= relay.example.yaml
# make dist builds these; PLATFORMS=linux/amd64 make dist builds one
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST      ?= dist

.PHONY: help run build dist test deps vet race bench bench-scale fmt test-faults

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST) | awk -F': ' '{printf "  %-8s %s\n", $$1, $$2}'

## run: build bin/relay and run it on relay.example.yaml (embedded store, no Redis needed); CONFIG=FILE for another
run: build
	bin/relay serve -config $(CONFIG)

## build: build bin/relay (version, commit and date stamped)
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/relay ./cmd/relay

## dist: static binaries for every platform in dist/ (DIST=DIR for another), with SHA256SUMS
dist:
	@rm -rf $(DIST) && mkdir -p $(DIST)
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=$(DIST)/relay-$(VERSION)-$$os-$$arch; \
		echo "  $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $$out ./cmd/relay || exit 1; \
	done
	@cd $(DIST) && if command -v sha256sum >/dev/null; then sha256sum relay-*; else shasum -a 256 relay-*; fi > SHA256SUMS && cat SHA256SUMS

## test: install what the tests need, then vet and race-enabled tests (the README walkthrough included)
test: deps vet race

## deps: make sure redis-server is there (apt-get when root and missing)
deps:
	@scripts/install-test-deps.sh

## vet: gofmt and go vet
vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

## race: go test -race on every package
race:
	$(GO) test -race -count=1 -timeout 15m ./...

## test-faults: the long fault suite (docs/reliability.md); its ledger goes to bin/faults-ledger.jsonl
test-faults: deps
	@mkdir -p bin && rm -f bin/faults-ledger.jsonl
	FAULTS_LONG=1 FAULTS_LEDGER=$(CURDIR)/bin/faults-ledger.jsonl $(GO) test -count=1 -timeout 90m -v ./test/faults/

## bench: one side-by-side table of Relay against its ceilings (BENCH_QUICK=1 for a short run)
bench:
	$(GO) run ./bench/run

## bench-scale: one, two and four relay processes on one Redis and on a 3-master cluster (not part of make bench)
bench-scale:
	BENCH_SCALE=1 $(GO) run ./bench/run
