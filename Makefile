# gitlab-runner-auth
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/gitlab-runner-auth/gitlab-runner-auth/internal/version.Version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
TRANSCRIPTS := $(CURDIR)/build/transcripts

.PHONY: all build demo test transcripts lint e2e collection collection-tree sanity lint-ansible ansible-tests ansible-versions molecule integration bench bench-fleet fuzz stress soak clean FORCE

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o build/register-runner ./cmd/register-runner
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o build/gitlab-sim ./testkit/cmd/gitlab-sim

demo: build
	./scripts/demo.sh

# The bound on each test binary: go test's own default (10 minutes) is
# about what a package takes on a loaded 2-core machine; a slow machine
# is not a failed test. Tests bound their own waits for what never comes.
TEST_TIMEOUT ?= 60m

# Everything: Go tests (engine, CLI, simulator, reliability), the Ansible
# collection under every version in ANSIBLE_VERSIONS (sanity, lint,
# playbook-level tests, integration targets) and the Molecule scenarios,
# then a sweep of every output the suite produced for secrets.
test: build transcripts lint sanity ansible-tests ansible-versions molecule integration
	GRA_TRANSCRIPT_DIR=$(TRANSCRIPTS) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v '/tests/ansible$$')
	$(GO) run ./tests/sweep $(TRANSCRIPTS) 100
	@cat build/reliability-report.txt

# Static checks: formatting, vet, staticcheck and deadcode (pinned versions,
# installed by .ci/run with go install). deadcode runs with -test because
# testkit/coretest is a fixture package that only tests use.
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

transcripts:
	rm -rf $(TRANSCRIPTS) && mkdir -p $(TRANSCRIPTS)

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

# The collection's tests run under each ansible-core version in
# ANSIBLE_VERSIONS: 2.14 (Debian 12's), 2.17 and 2.19. tests/ansible/toolchain
# picks the tools of one version: ansible-core on PATH when it is that
# version, else Debian's /usr/bin for 2.14, else ../shared/tools/modern-ansible
# for 2.17 and 2.19 (2.17.5 and 2.19.11 with ansible-test, and Molecule 26),
# else it fails naming the install command. meta/runtime.yml's
# requires_ansible names the first (no upper bound).
ANSIBLE_VERSIONS ?= 2.14 2.17 2.19
# Molecule 26 needs ansible-core 2.16 or later (ansible-compat 26 calls
# init_plugin_loader, which 2.14 lacks): the scenarios run under these.
MOLECULE_ANSIBLE ?= 2.17 2.19
toolchain = eval "$$($(CURDIR)/tests/ansible/toolchain $(1))"
# Prints how long the step took, as "time: <step> <seconds>s".
timed = { s=$$(date +%s) && $(2) && echo "time: $(1) $$(( $$(date +%s) - s ))s"; }
# Fails when a run's output says a tested version is not supported
# (meta/runtime.yml's requires_ansible must cover it).
supported = { ! grep -n 'does not support Ansible version' $(1) || { echo "$(1): requires_ansible does not cover this version"; exit 1; }; }

# ansible-test, ansible-lint and the integration targets see the collection
# exactly as users get it: the tarball installed with ansible-galaxy into
# build/collections/ansible_collections/gitlab_runner_auth/runner/. The tree
# is a git repository of its own, so that ansible-test and ansible-lint list
# its files (the project's .gitignore hides build/).
COLLECTIONS_TREE := $(CURDIR)/build/collections
COLLECTION_TREE  := $(COLLECTIONS_TREE)/ansible_collections/gitlab_runner_auth/runner

collection-tree: collection
	rm -rf $(COLLECTIONS_TREE) && mkdir -p $(COLLECTIONS_TREE)
	ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS_TREE) ansible-galaxy collection install -p $(COLLECTIONS_TREE) dist/gitlab_runner_auth-runner-*.tar.gz
	cd $(COLLECTION_TREE) && git init -q .

# Every sanity test, under each version, offline: tests/ansible/sanity-venvs
# creates the virtual environments ansible-test would fill from PyPI over
# Debian's Python packages instead, in a HOME of ansible-test's own under
# build/ (your ~/.ansible is never used). changelog is left out everywhere:
# it runs antsibull-changelog, which neither Debian 12 nor ../shared/tools
# provides; make sanity SANITY_SKIP= runs it where it is installed.
# tests/ansible checks the changelog's format and rendering. pylint is left
# out under 2.19 only: its ansible-test plugins need astroid 3
# (astroid.util.safe_infer), newer than Debian 12's pylint 2.16 and astroid
# 2.14; 2.14 and 2.17 run it on the same code. The ignore file of each
# version (collection/tests/sanity/ignore-<version>.txt) gives one reason
# per line.
SANITY_SKIP ?= changelog
SANITY_SKIP_2.19 ?= pylint
SANITY_HOME := $(CURDIR)/build/ansible-test-home

sanity: $(addprefix sanity-,$(ANSIBLE_VERSIONS))

sanity-%: collection-tree
	@$(call toolchain,$*) && cd $(COLLECTION_TREE) && \
	  py=$$(ansible --version | sed -n 's/^  python version = \([0-9]*\.[0-9]*\).*/\1/p') && \
	  $(call timed,sanity-$*,HOME=$(SANITY_HOME) $(CURDIR)/tests/ansible/sanity-venvs $(foreach t,$(SANITY_SKIP) $(SANITY_SKIP_$*),--skip $(t)) && \
	    HOME=$(SANITY_HOME) ansible-test sanity --color no --python $$py $(foreach t,$(SANITY_SKIP) $(SANITY_SKIP_$*),--skip-test $(t)))

# ansible-lint's production profile on the installed collection (from its
# own tree, so its files are listed) and on the Molecule scenarios, with the
# collection resolvable: nothing is mocked. The path ends in
# ansible_collections because ansible-compat 3 (Debian's ansible-lint 6.13)
# takes its parent as the collections folder on ansible-core 2.14.
lint: lint-ansible

lint-ansible: collection-tree
	@$(call toolchain,2.14) || exit 1; s=$$(date +%s); \
	  export ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS_TREE)/ansible_collections NO_COLOR=1; \
	  { (cd $(COLLECTION_TREE) && ansible-lint --profile production) && ansible-lint --profile production molecule; } \
	    >build/ansible-lint.txt 2>&1; rc=$$?; cat build/ansible-lint.txt; [ $$rc = 0 ] || exit 1; \
	  if grep -E 'mocked|Unable to resolve' build/ansible-lint.txt; then echo "lint-ansible: ansible-lint mocked the above"; exit 1; fi; \
	  echo "time: lint-ansible $$(( $$(date +%s) - s ))s"

# The playbook-level tests of tests/ansible, under each version: the
# collection is built once, and ANSIBLE_JOBS versions run side by side (each
# ansible-playbook is mostly Python starting up; make ANSIBLE_JOBS=1 runs
# them one after the other).
ANSIBLE_JOBS ?= 2
ansible-tests: build collection
	@$(MAKE) --no-print-directory -j$(ANSIBLE_JOBS) $(addprefix ansible-test-run-,$(ANSIBLE_VERSIONS))

ansible-tests-%: build collection
	@$(MAKE) --no-print-directory ansible-test-run-$*

ansible-test-run-%:
	@mkdir -p $(TRANSCRIPTS) && $(call toolchain,$*) && \
	  $(call timed,ansible-tests-$*,GRA_COLLECTION_TARBALL=$$(ls $(CURDIR)/dist/gitlab_runner_auth-runner-*.tar.gz) \
	    GRA_TRANSCRIPT_DIR=$(TRANSCRIPTS) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -skip '^TestResultsAgreeAcrossAnsibleVersions$$' ./tests/ansible/)

# The same play under every version in ANSIBLE_VERSIONS: identical results.
ansible-versions: build collection
	@mkdir -p $(TRANSCRIPTS) && \
	  $(call timed,ansible-versions,GRA_ANSIBLE_VERSIONS="$(ANSIBLE_VERSIONS)" GRA_TRANSCRIPT_DIR=$(TRANSCRIPTS) \
	    GRA_COLLECTION_TARBALL=$$(ls $(CURDIR)/dist/gitlab_runner_auth-runner-*.tar.gz) \
	    $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '^TestResultsAgreeAcrossAnsibleVersions$$' ./tests/ansible/)

# Real Molecule (molecule test --all) on the installed collection, under
# each version in MOLECULE_ANSIBLE. The base configuration is named
# explicitly: Molecule finds it only at the root of a git clone, not of a git
# worktree. The output goes to the transcripts, which the secret sweep reads.
molecule: $(addprefix molecule-,$(MOLECULE_ANSIBLE))

molecule-%: build collection-tree
	@mkdir -p $(TRANSCRIPTS) && $(call toolchain,$*) && \
	  { command -v molecule >/dev/null || { echo "molecule not found: ../shared/tools/modern-ansible setup, or pip install 'molecule>=25'"; exit 1; }; } && \
	  export ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS_TREE) NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 && \
	  $(call timed,molecule-$*,molecule --base-config .config/molecule/config.yml test --all >$(TRANSCRIPTS)/molecule-$*.txt 2>&1 || \
	    { tail -n 150 $(TRANSCRIPTS)/molecule-$*.txt; exit 1; }) && grep -A8 'SCENARIO RECAP' $(TRANSCRIPTS)/molecule-$*.txt && \
	  $(call supported,$(TRANSCRIPTS)/molecule-$*.txt)

# ansible-test integration on the installed collection, under each version:
# the targets in collection/tests/integration/targets/ start the simulator
# (gitlab-sim, found on PATH) themselves.
integration: $(addprefix integration-,$(ANSIBLE_VERSIONS))

integration-%: build collection-tree
	@mkdir -p $(TRANSCRIPTS) && $(call toolchain,$*) && cd $(COLLECTION_TREE) && export PATH=$(CURDIR)/build:$$PATH && \
	  $(call timed,integration-$*,ansible-test integration --color no --local >$(TRANSCRIPTS)/integration-$*.txt 2>&1 || \
	    { tail -n 150 $(TRANSCRIPTS)/integration-$*.txt; exit 1; }) && \
	  $(call supported,$(TRANSCRIPTS)/integration-$*.txt)

# Fuzz each target for FUZZTIME (seed corpora live in testdata/fuzz/).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseExecutor$$' -fuzztime=$(FUZZTIME) ./internal/config/
	$(GO) test -run='^$$' -fuzz='^FuzzParseTemplate$$' -fuzztime=$(FUZZTIME) ./internal/config/
	$(GO) test -run='^$$' -fuzz='^FuzzRenderRoundTrip$$' -fuzztime=$(FUZZTIME) ./internal/hostfs/
	$(GO) test -run='^$$' -fuzz='^FuzzParseArgs$$' -fuzztime=$(FUZZTIME) ./internal/module/

# Long variants of the reliability sweeps (crash sweep x200, 40 concurrency rounds).
stress: build
	GRA_STRESS=1 $(GO) test -count=1 -v -timeout 60m -run 'TestFaultSweep|TestCrashSweep|TestConcurrentRunsSerialise' ./tests/reliability/ | grep -E '^(---|ok|FAIL|\s+setup_test)'

# The fleet lifetime simulation at full size: 200 hosts living 365 days
# against the simulator (make test runs it with 16 hosts for 60 days).
# SEED picks the history (make soak SEED=42); the table lands in build/soak.md.
SOAK_HOSTS ?= 200
SOAK_DAYS  ?= 365
SEED       ?= 1
soak:
	mkdir -p build
	$(GO) test -count=1 -timeout 90m -v -run '^TestFleetLifetime$$' ./tests/lifetime/ -args -hosts $(SOAK_HOSTS) -days $(SOAK_DAYS) -seed $(SEED) -report $(CURDIR)/build/soak.md

# Benchmarks: engine (plan, render, load at 10/100/1,000 executors), the
# real CLI against the standalone simulator with 20 ms latency, and the
# clean-up over 10,000 runners with 1 KB descriptions (--diff --output json,
# peak RSS under 200 MB, requests per runner). Results in bench/; a missed
# target fails the run.
bench: build
	mkdir -p bench
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=1s ./internal/config/ ./internal/plan/ | tee bench/engine.txt
	@# Each benchmark's own exit status decides (a pipe into tee would hide it).
	$(GO) run ./bench/e2e --runs 7 --latency 20ms --out bench/e2e.csv >bench/e2e.txt; s=$$?; cat bench/e2e.txt; exit $$s
	$(GO) run ./bench/prune --runners 10000 --description 1024 --max-rss 200 --out bench/prune.csv >bench/prune.txt; s=$$?; cat bench/prune.txt; exit $$s

# Fleet: an Ansible play over 50 local inventory hosts, 4 executors each,
# against one simulator; then the same under rate limiting (429 + Retry-After).
bench-fleet: build collection
	mkdir -p bench
	$(GO) run ./bench/fleet --hosts 50 --executors 4 --out bench/fleet.csv | tee bench/fleet.txt

# End-to-end on a real systemd host (needs root): a Debian 12 container booted
# with systemd-nspawn, the role and module applied over nsenter, the real
# gitlab-runner. The root filesystem is cached in build/e2e.
# E2E_TIMEOUT bounds the whole run (no step has a limit of its own).
E2E_TIMEOUT ?= 60m
e2e: build collection
	$(GO) build -o build/e2e-runner ./tests/e2e
	./build/e2e-runner --timeout $(E2E_TIMEOUT)
