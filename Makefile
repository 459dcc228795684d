# gitlab-runner-auth
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/gitlab-runner-auth/gitlab-runner-auth/core.Version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
TRANSCRIPTS := $(CURDIR)/build/transcripts

.PHONY: all build demo test lint e2e collection collection-tree sanity lint-ansible bench bench-fleet fuzz stress clean FORCE

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o build/register-runner ./cmd/register-runner
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o build/gitlab-sim ./cmd/gitlab-sim

demo: build
	./scripts/demo.sh

# Everything: Go tests (engine, CLI, simulator, reliability), the Ansible
# collection and Molecule scenarios, then a sweep of every output the suite
# produced for secrets.
test: build lint sanity
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
COLLECTION_BINS := $(foreach a,amd64 arm64 ppc64le,collection/files/sync_linux_$(a))

collection/files/sync_linux_%: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/register-runner

collection: $(COLLECTION_BINS)
	mkdir -p dist
	rm -f dist/gitlab_runner_auth-runner-*.tar.gz
	ansible-galaxy collection build --force --output-path dist collection
	@ls -l dist/gitlab_runner_auth-runner-*.tar.gz

FORCE:

# ansible-test and ansible-lint see the collection where Ansible looks for
# it, ansible_collections/<namespace>/<name>/, as a copy of collection/
# without the built binaries (not source, and 27 MB of them). ansible-test
# lists files through git, so the copy is a repository of its own.
COLLECTIONS_TREE := $(CURDIR)/build/collections
COLLECTION_TREE  := $(COLLECTIONS_TREE)/ansible_collections/gitlab_runner_auth/runner

collection-tree:
	rm -rf $(COLLECTIONS_TREE) && mkdir -p $(COLLECTION_TREE)
	tar -C collection --exclude=./files --exclude=./tests/output -cf - . | tar -C $(COLLECTION_TREE) -xf -
	cd $(COLLECTION_TREE) && git init -q .

# Every sanity test that runs offline. Skipped: the tests that pip-install
# their own pinned requirements into a virtualenv of their own (PyPI is not
# reachable from CI): ansible-doc, changelog, import, pep8, pylint,
# runtime-metadata, validate-modules, yamllint. What they check is covered
# by tests/ansible (ansible-doc of every plugin) and by make lint (yamllint
# through ansible-lint).
SANITY_SKIP := ansible-doc changelog import pep8 pylint runtime-metadata validate-modules yamllint

sanity: collection-tree
	cd $(COLLECTION_TREE) && ansible-test sanity --python 3.11 $(foreach t,$(SANITY_SKIP),--skip-test $(t))

# make lint also runs ansible-lint's production profile on the collection
# and the Molecule scenarios, with the collection resolvable from the copy
# above.
lint: lint-ansible

lint-ansible: collection-tree
	ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS_TREE) ansible-lint --profile production collection molecule

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

# End-to-end on a real systemd host (needs root): a Debian 12 container booted
# with systemd-nspawn, the role and module applied over nsenter, the real
# gitlab-runner. The root filesystem is cached in build/e2e.
e2e: build collection
	$(GO) build -o build/e2e-runner ./tests/e2e
	./build/e2e-runner
