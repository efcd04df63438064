# framepush build, test and packaging. `make help` lists the targets.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PKG_VERSION := $(shell echo "$(VERSION)" | sed -e 's/^v//' -e 's/^\([^0-9]\)/0~\1/' -e 's/-/~/g')
LDFLAGS := -s -w -X framepush/internal/version.Version=$(VERSION)
GOBUILD := CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)'
BUILD := build
# Board targets: name:GOARCH:GOARM:debian-arch. armhf carries the ARMv6
# build because Raspberry Pi OS armhf also runs on the ARMv6 Pi Zero / Pi 1.
TARGETS := linux_armv6:arm:6:armhf linux_armv7:arm:7: linux_arm64:arm64::arm64 linux_amd64:amd64::amd64

.PHONY: help build demo test unit bench fleettest fuzz soak lint cross sizes dist deb deb-check vmtest clean

help:
	@echo "make build     build framepush and framerecv for this machine into bin/"
	@echo "make demo      run a receiver and the agent on the test pattern (no camera needed)"
	@echo "make test      the whole test suite, as CI runs it (scripts/test.sh)"
	@echo "make unit      go vet + go test -race ./... only"
	@echo "make bench     benchmarks and the comparison against raw TCP and the seed pair"
	@echo "make fleettest two framerecv on one MinIO bucket (erasure-coded, 4 drives), one killed, one drive lost (opt-in)"
	@echo "make fuzz      every fuzz target for FUZZTIME each (default 30s; opt-in, not in CI)"
	@echo "make soak      the agent at 1080p30 into a local receiver for SOAK_SECONDS (default 3600): RSS and CPU"
	@echo "make lint      gofmt, go vet, staticcheck"
	@echo "make cross     static binaries for linux arm (v6, v7), arm64, amd64 into build/"
	@echo "make sizes     stripped binary size per target"
	@echo "make dist      a tarball per target: binaries, example config, systemd units, install script"
	@echo "make deb       Debian packages for armhf, arm64 and amd64"
	@echo "make vmtest    the emulated-board test (arm64 qemu VM with vivid camera and PL061 GPIO)"

build:
	$(GOBUILD) -o bin/framepush ./cmd/framepush
	$(GOBUILD) -o bin/framerecv ./cmd/framerecv

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

unit:
	go vet ./...
	go test -race ./...

bench:
	bash scripts/bench.sh

fleettest:
	bash scripts/fleettest.sh

FUZZTIME ?= 30s
FUZZ_TARGETS := wire:FuzzParseRequest wire:FuzzAnswerReader receiver:FuzzServeConn capture/mjpeg:FuzzSplitJPEG queue:FuzzDecodeHeader view:FuzzSeqTracker
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t#*:}; echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
	  go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg; \
	done

SOAK_SECONDS ?= 3600
soak:
	BENCH_SECONDS=$(SOAK_SECONDS) bash scripts/agentbench.sh

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt: $$bad"; exit 1; fi
	go vet ./...
	bash scripts/deps.sh
	bash -c '. scripts/lib/tools.sh && "$$(tool_bin staticcheck)" ./...'

cross:
	@set -e; for t in $(TARGETS); do \
	  name=$${t%%:*}; rest=$${t#*:}; arch=$${rest%%:*}; rest=$${rest#*:}; arm=$${rest%%:*}; \
	  echo "build $$name"; \
	  GOOS=linux GOARCH=$$arch GOARM=$$arm $(GOBUILD) -o $(BUILD)/$$name/framepush ./cmd/framepush; \
	  GOOS=linux GOARCH=$$arch GOARM=$$arm $(GOBUILD) -o $(BUILD)/$$name/framerecv ./cmd/framerecv; \
	done

sizes: cross
	@printf '%-14s %12s %12s\n' target framepush framerecv
	@for t in $(TARGETS); do name=$${t%%:*}; \
	  printf '%-14s %9s KiB %9s KiB\n' $$name $$(( $$(stat -c %s $(BUILD)/$$name/framepush) / 1024 )) $$(( $$(stat -c %s $(BUILD)/$$name/framerecv) / 1024 )); \
	done

dist: cross
	@set -e; mkdir -p dist; for t in $(TARGETS); do name=$${t%%:*}; \
	  d=$(BUILD)/dist/framepush-$(VERSION)-$$name; rm -rf $$d; mkdir -p $$d; \
	  cp $(BUILD)/$$name/framepush $(BUILD)/$$name/framerecv $$d/; \
	  cp config/example.yaml $$d/framepush.yaml; \
	  cp scripts/systemd/framepush.service scripts/systemd/framerecv.service scripts/systemd/60-framepush-gpio.rules scripts/install.sh README.md docs/PROTOCOL.md $$d/; \
	  tar -C $(BUILD)/dist -czf dist/framepush-$(VERSION)-$$name.tar.gz framepush-$(VERSION)-$$name; \
	  echo "dist/framepush-$(VERSION)-$$name.tar.gz"; \
	done

deb: cross
	@set -e; mkdir -p dist; for t in $(TARGETS); do name=$${t%%:*}; deb=$${t##*:}; \
	  [ -n "$$deb" ] || continue; \
	  bash scripts/mkdeb.sh $$deb $(BUILD)/$$name $(PKG_VERSION) dist; \
	done

deb-check: deb
	bash scripts/mkdeb.sh --check dist/framepush_$(PKG_VERSION)_amd64.deb

vmtest:
	bash scripts/vmtest.sh

clean:
	rm -rf bin $(BUILD) dist
