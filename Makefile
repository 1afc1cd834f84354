# peapod — the two commands that matter are `make demo` and `make test`.
# Both install what they need (Debian packages as root, Go modules).

GO       ?= go
BIN      := bin/peapod
PREFIX   ?= /usr/local
# Debian packages peapod and its tests use at run time.
DEB_PKGS := runc conmon catatonit containernetworking-plugins busybox iptables \
            docker-registry zstd iproute2 procps
GOTEST_FLAGS ?= -count=1 -timeout 30m

.PHONY: all deps build test unit vet demo install uninstall clean

all: build

# deps installs the Debian packages that are missing (needs root).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "peapod: run as root to install:$$missing" >&2; exit 1; fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build:
	$(GO) build -o $(BIN) ./cmd/peapod

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@out=$$(gofmt -l cmd internal test bench demo 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# test runs every test: unit, integration (real registry, runc, conmon, CNI,
# kernel) and end-to-end tests of the built binary. Root is required.
test: deps build vet
	PEAPOD_BIN=$(CURDIR)/$(BIN) $(GO) test $(GOTEST_FLAGS) ./...

demo: deps build
	./demo/demo.sh

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/peapod
	install -D -m 0644 contrib/systemd/peapod.service $(DESTDIR)/etc/systemd/system/peapod.service

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/peapod $(DESTDIR)/etc/systemd/system/peapod.service

clean:
	rm -rf bin
