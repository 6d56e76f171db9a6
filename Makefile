# Assay's vocabulary. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

include hack/versions.env
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export ASSAY_CACHE ?= $(HOME)/.cache/assay
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,debug]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtual environment (pinned by constraints.txt)

.PHONY: binaries
binaries: ## Build (or find cached) etcd, Kubernetes and KWOK binaries in $(ASSAY_CACHE)
	hack/build-binaries.sh control-plane

.PHONY: cluster-up
cluster-up: binaries ## Start the local cluster (KWOK fake GPU nodes); kubeconfig in .cluster/kubeconfig
	hack/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and everything it started
	hack/cluster-down.sh

.PHONY: lint
lint: venv ## ruff + mypy + hadolint (Dockerfile)
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

.PHONY: fmt
fmt: venv ## Format and auto-fix
	$(BIN)/ruff format operator tests
	$(BIN)/ruff check --fix operator tests

.PHONY: test-unit
test-unit: venv ## Unit tests (no cluster)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: venv binaries ## Integration tests on the local cluster (started and stopped if not up)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

.PHONY: test
test: venv binaries lint ## Everything CI runs: lint, unit and integration tests
	$(BIN)/pytest tests $(PYTEST_ARGS)
