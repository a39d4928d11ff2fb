# Kappa Operator. `make run` plays the demo story on the local stack; `make test` tests it all.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE ?= $(or $(KAPPA_CACHE),$(HOME)/.cache/kappa-operator)
export PIP_CACHE_DIR ?= $(CACHE)/pip

.PHONY: help venv crds lint unit test bench bench-replay run up down e2e image flink-image clean

help:
	@echo "make run    the local stack (control plane, Kafka, PostgreSQL, Flink), the operator, and the demo story"
	@echo "make test   lint, types, layer contracts, unit and integration tests on the real test bed"
	@echo "make crds   regenerate the CRDs (manifests/crds, charts/kappa-operator/crds) from the models"
	@echo "make down   stop everything make run started"
	@echo "make up     start the local control plane only"
	@echo "make bench  lag-poll benchmark against the test Kafka (prints figures)"
	@echo "make bench-replay   replay speed on real Flink: replay/live and replay/plain-consumer ratios"
	@echo "make e2e    kind-based end-to-end tests (needs Docker)"

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

crds: venv
	$(VENV)/bin/kappa crds # every copy: manifests/crds (kustomize) and charts/kappa-operator/crds (Helm)

lint: venv
	$(VENV)/bin/ruff check operator e2e benchmarks examples
	$(VENV)/bin/ruff format --check operator e2e benchmarks examples
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy e2e
	$(VENV)/bin/hadolint Dockerfile testbed/flink/Dockerfile
	$(VENV)/bin/lint-imports
	$(VENV)/bin/kappa crds --check

unit: venv
	$(PY) -m pytest operator/tests/unit

test: lint
	bash testbed/build-k8s.sh
	bash testbed/build-promtool.sh
	bash testbed/build-helm.sh
	bash testbed/build-prometheus-crds.sh >/dev/null
	bash testbed/build-argocd-lua.sh >/dev/null
	bash testbed/kafka.sh fetch
	bash testbed/upstream-crds/fetch.sh >/dev/null
	$(PY) -m pytest operator/tests

bench: venv
	bash testbed/kafka.sh up
	$(PY) benchmarks/lag_poll.py

bench-replay: venv
	$(PY) benchmarks/replay_speed.py

run: venv
	bash testbed/run-local.sh

up:
	bash testbed/controlplane.sh up

down:
	bash testbed/down-local.sh

# kind, real Strimzi and FKO, this image from the Helm chart: the replay story end to end (docs/e2e.md). Needs a
# Docker engine and network access; skipped with the reason otherwise. KEEP=1 keeps the kind cluster for a rerun.
e2e: venv
	$(VENV)/bin/pip install -q -e '.[dev,e2e]'
	$(PY) -m pytest e2e -v -s --cluster-name=kappa-e2e $(if $(KEEP),--keep-cluster)

image:
	docker build -t kappa-operator:0.1.0 .

flink-image:
	docker build -f testbed/flink/Dockerfile -t kappa-dev/flink-sql-runner:2.2 .

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
