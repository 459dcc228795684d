# gitlab-runner-auth
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/gitlab-runner-auth/gitlab-runner-auth/core.Version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
TRANSCRIPTS := $(CURDIR)/build/transcripts

.PHONY: all build demo test lint collection bench bench-fleet fuzz stress clean FORCE

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o build/register-runner ./cmd/register-runner
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o build/gitlab-sim ./cmd/gitlab-sim

demo: build
	./scripts/demo.sh

# Everything: Go tests (engine, CLI, simulator, reliability), the Ansible
# collection and Molecule scenarios, then a sweep of every output the suite
# produced for secrets.
test: build lint
	rm -rf $(TRANSCRIPTS) && mkdir -p $(TRANSCRIPTS)
	GRA_TRANSCRIPT_DIR=$(TRANSCRIPTS) $(GO) test -count=1 ./...
	$(GO) run ./tests/sweep $(TRANSCRIPTS) 100
	@cat build/reliability-report.txt

# Static checks: formatting, vet, staticcheck and deadcode (pinned versions,
# installed by .ci/run with go install). deadcode runs with -test because
# core/coretest is a fixture package that only tests use.
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
DEADCODE    ?= $(shell $(GO) env GOPATH)/bin/deadcode
lint:
	@test -x $(STATICCHECK) || { echo "staticcheck missing: go install honnef.co/go/tools/cmd/staticcheck@v0.8.2"; exit 1; }
	@test -x $(DEADCODE) || { echo "deadcode missing: go install golang.org/x/tools/cmd/deadcode@v0.51.0"; exit 1; }
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@out=$$($(DEADCODE) -test ./...); if [ -n "$$out" ]; then echo "dead code:"; echo "$$out"; exit 1; fi
	@echo "lint: gofmt, go vet, staticcheck, deadcode clean"

clean:
	rm -rf build dist

# The collection ships the module as one stripped binary per platform; the
# binary is also the register-runner the service role installs.
COLLECTION_BINS := $(foreach a,amd64 arm64 ppc64le,collection/bin/sync_linux_$(a))

collection/bin/sync_linux_%: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/register-runner

collection: $(COLLECTION_BINS)
	mkdir -p dist
	rm -f dist/gitlab_runner_auth-runner-*.tar.gz
	ansible-galaxy collection build --force --output-path dist collection
	@ls -l dist/gitlab_runner_auth-runner-*.tar.gz

FORCE:

# Fuzz each target for FUZZTIME (seed corpora live in testdata/fuzz/).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseExecutor$$' -fuzztime=$(FUZZTIME) ./core/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTemplate$$' -fuzztime=$(FUZZTIME) ./core/
	$(GO) test -run='^$$' -fuzz='^FuzzRenderRoundTrip$$' -fuzztime=$(FUZZTIME) ./core/
	$(GO) test -run='^$$' -fuzz='^FuzzParseArgs$$' -fuzztime=$(FUZZTIME) ./module/

# Long variants of the reliability sweeps (crash sweep x200, 40 concurrency rounds).
stress: build
	GRA_STRESS=1 $(GO) test -count=1 -v -timeout 60m -run 'TestFaultSweep|TestCrashSweep|TestConcurrentRunsSerialise' ./tests/reliability/ | grep -E '^(---|ok|FAIL|\s+setup_test)'

# Benchmarks: engine (plan, render, load at 10/100/1,000 executors) and the
# real CLI against the standalone simulator with 20 ms latency. Results in
# bench/; a missed target fails the run.
bench: build
	mkdir -p bench
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=1s ./core/ | tee bench/engine.txt
	$(GO) run ./bench/e2e --runs 7 --latency 20ms --out bench/e2e.csv | tee bench/e2e.txt

# Fleet: an Ansible play over 50 local inventory hosts, 4 executors each,
# against one simulator; then the same under rate limiting (429 + Retry-After).
bench-fleet: build collection
	mkdir -p bench
	$(GO) run ./bench/fleet --hosts 50 --executors 4 --out bench/fleet.csv | tee bench/fleet.txt
