# wisp: build, test, benchmark. Tests use Debian's interpreter, never the first
# python3 on PATH (which may be a pyenv that cannot see Debian's packages).
PYTHON ?= /usr/bin/python3
GO ?= go
# HTTP/2 is net/http's own (package h2 puts it in front of wisp's HTTP/1.1
# handlers), so the nethttpomithttp2 tag of earlier builds is gone.
BUILDFLAGS ?=

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
# tools/ module, so that its dependencies stay out of wisp's go.mod). The
# packaged binary is built as Debian's hardening asks (PIE, stripped), the
# manual pages come from the cobra commands (cmd/wisp-man), and the package
# must pass lintian with no error and no warning (TestDebPackage runs it).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
PKG := dist/out/pkg
deb:
	rm -rf $(PKG) && mkdir -p $(PKG)/man
	$(GO) build $(BUILDFLAGS) -trimpath -buildmode=pie -ldflags "-s -w -X wisp/internal/cli.commit=$(COMMIT)" -o $(PKG)/wisp ./cmd/wisp
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./cmd/wisp-man $(PKG)/man
	gzip -9n $(PKG)/man/*.1
	gzip -9nc dist/deb/changelog > $(PKG)/changelog.gz
	WISP_VERSION=$(VERSION) DEB_ARCH=$$($(GO) env GOARCH) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
		$(GO) tool -modfile=tools/go.mod nfpm package --config dist/nfpm.yaml --packager deb --target dist/out/
