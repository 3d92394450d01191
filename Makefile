GO ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/simwatch/simwatch/internal/app.Version=$(VERSION) -X github.com/simwatch/simwatch/internal/app.Revision=$(REVISION)

.PHONY: build test demo lint bench bench-smoke fuzz-smoke docker

# A static binary that says which build it is (watcher --version).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/watcher ./cmd/watcher

# The container image (Dockerfile: static binary on distroless, non-root).
docker:
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t simwatch:$(VERSION) .

# Every test, with the race detector, plus a check of the shipped rules.
test:
	$(GO) test -race -count=1 ./...
	$(GO) run ./cmd/watcher rules check rules.example.yaml
	$(GO) run ./cmd/watcher rules test rules.example.test.yaml

demo:
	$(GO) run ./cmd/watcher demo

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Every figure of BENCHMARKS.md: the Go benchmarks, then issue 13's targets
# with the simulator and the watcher in separate processes, against Huawei's
# official Go SDK listing the same fleet (bench/sdk, a module of its own:
# the SDK is a 47 MB download the main module does not need).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	cd bench/sdk && $(GO) build -o ../../bin/sdk-list .
	$(GO) run ./cmd/watcher bench --cards 200000 --sdk bin/sdk-list --json bin/bench-200k.json
	$(GO) run ./cmd/watcher bench --cards 1000000 --sdk bin/sdk-list --json bin/bench-1m.json

# A few seconds: keeps the benchmark code compiling and running in CI.
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./internal/poll/
	$(GO) run ./cmd/watcher bench --cards 2000 --cycles 1 --interval 300ms
	$(GO) run ./cmd/watcher bench --stages --cards 2000 --cycles 1 --latency 20

# Every fuzz target for FUZZTIME each, from its seed corpus in testdata/fuzz.
# The targets are found, not listed, so a new one cannot be left out. A run
# the fuzzing engine itself gives up on (a worker too slow to stop on a busy
# machine: "context deadline exceeded") is run once more; a real failure
# saves its input under testdata/fuzz and fails again.
FUZZTIME ?= 4s
fuzz-smoke:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$fz"; \
	    $(GO) test -run '^$$' -fuzz "^$$fz\$$" -fuzztime $(FUZZTIME) $$pkg > /tmp/fuzz.out 2>&1 || \
	    { grep -q 'context deadline exceeded' /tmp/fuzz.out && ! grep -q 'Failing input written' /tmp/fuzz.out && \
	      $(GO) test -run '^$$' -fuzz "^$$fz\$$" -fuzztime $(FUZZTIME) $$pkg > /tmp/fuzz.out 2>&1; } || { cat /tmp/fuzz.out; exit 1; }; \
	  done; \
	done
