# wisp: build, test, benchmark. Tests use Debian's interpreter, never the first
# python3 on PATH (which may be a pyenv that cannot see Debian's packages).
PYTHON ?= /usr/bin/python3
GO ?= go
# wisp speaks HTTP/1.1 only (HTTP/2 needs TLS, which wisp leaves to a front
# proxy): leaving net/http's HTTP/2 out saves about 1 MiB of resident memory.
BUILDFLAGS ?= -tags nethttpomithttp2

.PHONY: deps build run test test-go test-py bench deb

# deps installs everything the tests and the example need (Debian packages).
deps:
	scripts/deps.sh

# COMMIT is what `wisp version` names as the build's commit.
COMMIT ?= $(shell r=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null && echo $$r || echo $$r-dirty; })

build:
	$(GO) build $(BUILDFLAGS) -ldflags "-X wisp/internal/cli.commit=$(COMMIT)" -o bin/wisp ./cmd/wisp

run: build
	bin/wisp run --python $(PYTHON) --chdir examples/hello app.py

test: build test-py test-go

test-go:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

test-py:
	cd internal/pyembed/py && $(PYTHON) -m pytest -q -p no:cacheprovider

# bench runs ../shared/bench with wisp as a server row (see docs/benchmarks.md).
bench: build
	scripts/bench.sh

# VERSION is the package version: wisp's own (internal/cli).
VERSION ?= $(shell sed -n 's/^const version = "\(.*\)"/\1/p' internal/cli/cli.go)

# deb builds dist/out/wisp_VERSION_ARCH.deb with nfpm (a Go tool of the
# tools/ module, so that its dependencies stay out of wisp's go.mod).
deb: build
	mkdir -p dist/out
	WISP_VERSION=$(VERSION) DEB_ARCH=$$($(GO) env GOARCH) \
		$(GO) tool -modfile=tools/go.mod nfpm package --config dist/nfpm.yaml --packager deb --target dist/out/
