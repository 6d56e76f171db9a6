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

$(VENV)/.installed: pyproject.toml constraints.txt tests/runner/s3-requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,debug]'
	python3 -m venv $(VENV)/s3
	$(VENV)/s3/bin/pip install -q --disable-pip-version-check -r tests/runner/s3-requirements.txt
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtual environment (pinned by constraints.txt)

.PHONY: binaries
binaries: ## Build (or find cached) etcd, Kubernetes and KWOK binaries in $(ASSAY_CACHE)
	hack/build-binaries.sh control-plane

.PHONY: cluster-up
# Benchmarks: make cluster-up KWOK_AUTO_COMPLETE=1s KWOK_DISABLE_QPS_LIMITS=1 \
#   KWOK_EXTRA_ARGS="--extra-args kube-controller-manager=concurrent-job-syncs=20"
KWOK_AUTO_COMPLETE ?=
# Try the operator on fake nodes: make cluster-up KWOK_ASSAY_PODS=succeed (hack/kwok/README.md)
KWOK_ASSAY_PODS ?=
KWOK_DISABLE_QPS_LIMITS ?=
KWOK_EXTRA_ARGS ?=
cluster-up: binaries ## Start the local cluster (KWOK fake GPU nodes); kubeconfig in .cluster/kubeconfig
	$(if $(KWOK_AUTO_COMPLETE),ASSAY_KWOK_AUTO_COMPLETE='$(KWOK_AUTO_COMPLETE)') \
	$(if $(KWOK_ASSAY_PODS),ASSAY_KWOK_ASSAY_PODS='$(KWOK_ASSAY_PODS)') \
	$(if $(KWOK_DISABLE_QPS_LIMITS),ASSAY_KWOK_DISABLE_QPS_LIMITS='$(KWOK_DISABLE_QPS_LIMITS)') \
	$(if $(KWOK_EXTRA_ARGS),ASSAY_KWOK_EXTRA_ARGS='$(KWOK_EXTRA_ARGS)') \
	hack/kwok-cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and everything it started
	hack/kwok-cluster.sh down

.PHONY: lint
lint: venv ## ruff + mypy --strict (pyproject's [tool.mypy]) + hadolint (Dockerfile)
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/ruff format --check operator tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy --strict benchmarks
	$(BIN)/hadolint Dockerfile

.PHONY: fmt
fmt: venv ## Format and auto-fix
	$(BIN)/ruff format operator tests benchmarks
	$(BIN)/ruff check --fix operator tests benchmarks

# Suites are pytest markers (pyproject.toml; tests/conftest.py applies them): each target selects its own with
# -m over the whole test tree, and on the local cluster when a selected test needs one (tests/support/cluster.py
# decides which: ASSAY_KUBECONFIG, else the local cluster, started and stopped if it was not up).
# PYTEST_ARGS adds options (-k, -x, -s) or narrows to files: PYTEST_ARGS=tests/integration/test_cli.py runs that
# file's tests of the suite (another -m replaces the suite's).
# pytest exits 5 when it collected no test: fine for a suite narrowed by PYTEST_ARGS, an error for the whole suite.
pytest_suite = $(BIN)/pytest -ra -m '$(1)' $(PYTEST_ARGS) || { rc=$$?; [[ $$rc == 5 ]] && echo "no tests collected for -m '$(1)'" || exit $$rc; }

.PHONY: test-unit
test-unit: venv ## Unit tests and the benchmark harness's pure tests (no cluster)
	$(call pytest_suite,unit)

.PHONY: browser
browser: ## Chromium and chromedriver for the console's browser tests (Debian packages; needs root, else they skip)
	hack/install-browser.sh

.PHONY: screenshots
screenshots: venv binaries browser ## Refresh the console screenshots in docs/console/ (the browser tests on the local cluster)
	ASSAY_SCREENSHOTS=docs/console $(BIN)/pytest -ra -m browser $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: venv binaries browser ## Integration tests: on ASSAY_KUBECONFIG, the running local cluster, or one started and stopped
	$(call pytest_suite,cluster and not chaos)

.PHONY: test
test: venv binaries kueue lint browser ## Everything CI runs: lint, unit, integration and control-plane fault tests (clusters started and stopped)
	$(BIN)/pytest -ra -m 'not chaos' $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-chaos

.PHONY: crds
crds: venv ## Regenerate crds/*.yaml from the API models (operator/assay/api)
	$(PY) -m assay.api.crdgen crds

.PHONY: images
images: ## Build the runner, operator and sandbox images (debootstrap, no registry; cached by content); load them into the real node
	hack/images.sh all

.PHONY: deploy
deploy: ## Install Assay on the local cluster from manifests/ (kubectl apply -k) with the operator image built here; waits for the rollout
	hack/deploy.sh up

.PHONY: undeploy
undeploy: ## Uninstall it (kubectl delete -k: the CRDs and every Evaluation go too)
	hack/deploy.sh down

.PHONY: node-up
node-up: ## Add the real kubelet + containerd node to the running local cluster (cluster-up does it too)
	hack/node-up.sh

.PHONY: node-down
node-down: ## Remove the real node, leaving no process, mount, interface or container behind
	hack/node-down.sh

.PHONY: jobset
jobset: ## Build (or find cached) the JobSet controller, the benchmarks' Go peer, in $(ASSAY_CACHE)/jobset
	hack/build-jobset.sh

.PHONY: kueue
kueue: ## Build (or find cached) Kueue's manager and take its CRDs, in $(ASSAY_CACHE)/kueue
	hack/build-kueue.sh

.PHONY: kueue-up
kueue-up: venv kueue ## Install Kueue's CRDs into the local cluster and run its manager here (tests marked kueue)
	$(PY) hack/kueue.py up

.PHONY: kueue-down
kueue-down: venv ## Stop the Kueue manager and remove its webhooks (its CRDs stay)
	$(PY) hack/kueue.py down

# make bench TIER=M; BENCH_ARGS="--arms A0,A2 --note '...'" passes options to python -m benchmarks.
TIER ?= S
BENCH_ARGS ?=
.PHONY: bench
bench: venv binaries jobset ## Benchmark raw Jobs, JobSet and Assay, 3 interleaved rounds, each run on a fresh cluster (TIER=S|M); writes benchmarks/results/
	$(PY) -m benchmarks --tier $(TIER) $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: venv binaries jobset ## A tiny benchmark (10 evaluations x 4 tasks) to check the harness; writes benchmarks/tmp/results/
	$(BIN)/pytest -q -p no:cacheprovider benchmarks/tests
	$(PY) -m benchmarks --tier smoke --out benchmarks/tmp/results $(BENCH_ARGS)

EXAMPLE_DIGITS := examples/digits/model/v1/classifier.pkl
$(EXAMPLE_DIGITS): examples/digits/train.py examples/digits/digits_handler.py | $(VENV)/.installed
	$(PY) examples/digits/train.py

.PHONY: example
example: $(EXAMPLE_DIGITS) ## Train the digits example (examples/digits/model/v1/) and export its data (data/v1/)

.PHONY: run-example
run-example: example ## Run the digits example locally: assay run -f examples/digits/evaluation.yaml --local
	$(BIN)/assay run -f examples/digits/evaluation.yaml --local

.PHONY: bench-runner
bench-runner: venv ## Runner overhead against a plain loop calling the same handler on the same data (batch 64)
	$(PY) benchmarks/runner_overhead.py

.PHONY: test-runner
test-runner: venv ## Runner tests: its unit tests and the process-level ones (no cluster, ~2 min)
	$(call pytest_suite,runner)

.PHONY: operator
operator: venv ## Run assay-operator against the local cluster (all namespaces, webhook at localhost); Ctrl-C stops it
	$(BIN)/assay-operator --kubeconfig .cluster/kubeconfig --webhook local --metrics-port 0 --health-port 0

.PHONY: test-operator
test-operator: venv binaries ## The operator's tests (render, rollup, controller, admission): unit, then on the local cluster
	$(call pytest_suite,operator)

.PHONY: demo
demo: venv example ## The digits example on the local cluster's real node, Assay installed from manifests/ (ASSAY_DEMO_OPERATOR=process: a host process); prints real metrics
	hack/demo.sh

.PHONY: test-cli
test-cli: venv binaries ## The CLI and SDK tests: unit, then on the local cluster with the real operator (~2 min)
	$(call pytest_suite,cli)

.PHONY: test-faults
test-faults: venv binaries ## Reliability and security on the local cluster: faults, hostile input, password, Pod Security (~4 min)
	$(call pytest_suite,faults)

# $(1): a command run on the chaos cluster (.cluster/chaos/kubeconfig), started afresh before it and deleted
# after it, whatever its outcome.
on_chaos_cluster = hack/kwok-cluster.sh up chaos --fresh; rc=0; $(1) || rc=$$?; hack/kwok-cluster.sh down chaos; exit $$rc

.PHONY: test-chaos
test-chaos: venv binaries ## kube-apiserver and etcd restarted and away for minutes, a node deleted, mid-run, on a cluster of their own (~10 min; the last step of make test)
	$(call on_chaos_cluster,ASSAY_KUBECONFIG="$(CURDIR)/.cluster/chaos/kubeconfig" \
	  ASSAY_CHAOS_CLUSTER="$$(hack/kwok-cluster.sh name chaos)" $(BIN)/pytest -ra -s -m chaos $(PYTEST_ARGS))

SOAK_EVALUATIONS ?= 2000
.PHONY: soak
soak: venv binaries ## 2,000 evaluations through one operator on a cluster of its own; fails above 3 KiB RSS growth per evaluation (~12 min; not in make test)
	$(call on_chaos_cluster,$(PY) tests/soak/soak.py --kubeconfig .cluster/chaos/kubeconfig --evaluations $(SOAK_EVALUATIONS))
