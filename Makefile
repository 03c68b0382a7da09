# Two commands on a fresh machine: `make dev` runs the whole thing locally, `make test`
# passes the tests. Both install what is missing first (`make deps`).

SHELL := /bin/bash
BIN := $(CURDIR)/bin
GO ?= go
export PATH := $(BIN):$(PATH)

# Pinned versions of the servers the tests and `make dev` run.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
TEMPORAL_CLI_VERSION := v1.5.1
STATICCHECK_VERSION := v0.8.2
HELM_VERSION := v3.22.0
ZOOKEEPER_HOME ?= /usr/share/zookeeper
export ZOOKEEPER_HOME

TEST_FLAGS ?= -count=1 -timeout 25m -p 2
BENCH_NODES ?= 100000

.PHONY: all build deps deps-zookeeper deps-etcd deps-minio deps-temporal deps-helm deps-promtool deps-staticcheck test unit lint bench dev clean

all: build

build:
	$(GO) build -o $(BIN)/worker ./worker
	$(GO) build -o $(BIN)/starter ./starter
	$(GO) build -o $(BIN)/api ./api
	$(GO) build -o $(BIN)/devseed ./scripts/devseed

deps: deps-zookeeper deps-etcd deps-minio deps-temporal deps-helm deps-promtool

deps-zookeeper:
	@if [ ! -x $(ZOOKEEPER_HOME)/bin/zkServer.sh ]; then \
		echo "installing ZooKeeper (Debian package zookeeper)"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq zookeeper >/dev/null; \
	fi
	@test -x $(ZOOKEEPER_HOME)/bin/zkServer.sh || { echo "ZooKeeper not found at $(ZOOKEEPER_HOME)"; exit 1; }

# etcd for the tests of the etcd metadata store (Debian package etcd-server, /usr/bin/etcd).
# After deps-zookeeper: two apt-get runs at once (make -j) would fight over the dpkg lock.
deps-etcd: deps-zookeeper
	@if [ ! -x /usr/bin/etcd ]; then \
		echo "installing etcd (Debian package etcd-server)"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq etcd-server >/dev/null; \
	fi
	@test -x /usr/bin/etcd || { echo "etcd not found at /usr/bin/etcd"; exit 1; }

deps-minio:
	@test -x $(BIN)/minio || { echo "installing MinIO $(MINIO_VERSION) into bin/ (a few minutes)"; \
		GOBIN=$(BIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION); }

deps-temporal:
	@test -x $(BIN)/temporal || { echo "installing Temporal CLI $(TEMPORAL_CLI_VERSION) into bin/ (a few minutes)"; \
		GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION); }

# helm lints and renders the chart in deploy/helm (go test ./deploy/helm/).
deps-helm:
	@test -x $(BIN)/helm || { echo "installing helm $(HELM_VERSION) into bin/ (a few minutes)"; \
		GOBIN=$(BIN) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); }

# promtool checks and unit-tests the alert rules and lints the API's /metrics; it comes with
# Debian's prometheus package (the server is not started) and is linked into bin/. After
# deps-zookeeper: two apt-get runs at once (make -j) would fight over dpkg's lock.
deps-promtool: | deps-etcd
	@if [ ! -x /usr/bin/promtool ]; then \
		echo "installing promtool (Debian package prometheus)"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi
	@mkdir -p $(BIN) && ln -sf /usr/bin/promtool $(BIN)/promtool && $(BIN)/promtool --version >/dev/null

deps-staticcheck:
	@test -x $(BIN)/staticcheck || GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# All tests: unit, workflow (testsuite) and integration (real ZooKeeper, MinIO, Temporal).
test:
	@$(MAKE) --no-print-directory -j3 deps
	$(GO) test $(TEST_FLAGS) ./...

lint: deps-staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

# Throughput against in-run yardsticks (ratios), the dump's peak RSS, the etcd dump
# (BenchmarkEtcdDumpRatios, matched by DumpRatios) against a plain range read of the same
# keys, and the peak RSS of `starter diff` on two archives of the tree (under 150 MB, or the
# bench fails). The ZooKeeper under
# test runs with the JVM's production defaults, and each benchmark runs three passes: the
# first ones warm the server's JIT (a production ensemble is a long-running JVM); the
# metrics are the last pass's. BENCH_NODES sets the tree size.
BENCH_PASSES ?= 3
bench:
	@$(MAKE) --no-print-directory -j3 deps
	set -o pipefail; TESTENV_ZK_JVMFLAGS="-Xmx3g" ZK_BENCH_ZNODES=$(BENCH_NODES) $(GO) test -run '^$$' \
		-bench 'DumpRatios|DumpWalkLargeZnodes|Apply$$|DiffPeakRSS' -benchtime $(BENCH_PASSES)x -timeout 60m -v \
		./internal/zookeeper/ ./internal/restore/ ./internal/etcdstore/ ./internal/backupdiff/ | grep -v '^=== '

dev:
	@$(MAKE) --no-print-directory -j3 deps
	@$(MAKE) --no-print-directory build
	./scripts/dev.sh

clean:
	rm -rf $(BIN) .dev
