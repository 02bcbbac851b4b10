# aspect-ipc: one entry point for every language. Each target installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
BUILD := .build
GO_BIN := $(BUILD)/go
# Parallel-safe: every test makes its own socket paths. Keep the whole suite well under 15 minutes.
PYTEST_FLAGS ?= -q -p no:cacheprovider

.PHONY: help setup setup-python setup-node setup-go build build-node build-go \
        test lint test-python test-node test-go integration demo demo-python demo-node demo-go \
        dist bench soak clean

help:
	@echo "make demo         run the dual-channel example against the python, node and go workers"
	@echo "make test         lint + every test suite (python, node, go, integration)"
	@echo "make integration  the cross-language integration suite alone"
	@echo "make bench        benchmarks, with raw-socket and multiprocessing.Pipe baselines"
	@echo "make dist         the frozen parent binary (PyInstaller)"
	@echo "make lint         ruff + mypy --strict on the Python package, go vet, tsc"

# ---- set-up ---------------------------------------------------------------------------------
setup: setup-python setup-node setup-go

setup-python: $(VENV)/.installed
$(VENV)/.installed: python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e 'python[dev]'
	touch $@

setup-node: workers-node/node_modules/.installed
workers-node/node_modules/.installed: workers-node/package.json workers-node/package-lock.json
	cd workers-node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup-go:
	go mod download -C workers-go
	go work sync

# ---- build ----------------------------------------------------------------------------------
build: build-node build-go

build-node: setup-node
	cd workers-node && npm run --silent build

build-go: setup-go
	mkdir -p $(GO_BIN)
	go build -o $(GO_BIN)/test-worker ./integration-tests/workers/go
	go build -o $(GO_BIN)/dual-channel-worker ./examples/dual-channel

# ---- checks ---------------------------------------------------------------------------------
lint: setup-python
	$(VENV)/bin/ruff check python integration-tests examples bench
	$(VENV)/bin/ruff format --check python integration-tests examples bench
	cd python && ../$(VENV)/bin/mypy

test: lint test-python test-node test-go integration

test-python: setup-python
	cd python && ../$(PYTEST) $(PYTEST_FLAGS)

test-node: build-node
	cd workers-node && npm test --silent

test-go: setup-go
	cd workers-go && go vet ./... && go test -race -count=1 ./...
	cd workers-go && go test -run '^$$' -fuzz FuzzLengthPrefixedDecoder -fuzztime 5s . \
	  && go test -run '^$$' -fuzz FuzzMessagePackDecode -fuzztime 5s .

integration: setup-python build dist
	$(PYTEST) $(PYTEST_FLAGS) integration-tests

# ---- demo -----------------------------------------------------------------------------------
demo: setup-python build
	@for lang in python node go; do \
	  echo; echo "######## dual-channel demo: $$lang worker ########"; \
	  $(PY) examples/dual-channel/parent.py --worker $$lang; \
	done

demo-python: setup-python
	$(PY) examples/dual-channel/parent.py --worker python
demo-node: setup-python build-node
	$(PY) examples/dual-channel/parent.py --worker node
demo-go: setup-python build-go
	$(PY) examples/dual-channel/parent.py --worker go

# ---- release, performance, robustness ------------------------------------------------------
# The frozen demo parent: one file, no Python needed to run it. The test-only packages the venv
# holds are excluded, and so is trio (the demo runs on asyncio); --strip halves the size.
FROZEN := $(BUILD)/dist/aspect-ipc-demo
FROZEN_EXCLUDES := pytest _pytest hypothesis pygments pkg_resources setuptools trio
dist: build $(FROZEN)
$(FROZEN): examples/dual-channel/parent.py $(wildcard python/src/aspect_ipc/*.py) $(VENV)/.installed
	$(PY) -m PyInstaller --noconfirm --clean --log-level WARN --onefile --strip \
	  $(addprefix --exclude-module ,$(FROZEN_EXCLUDES)) \
	  --name aspect-ipc-demo --distpath $(BUILD)/dist --workpath $(BUILD)/pyinstaller \
	  --specpath $(BUILD)/pyinstaller examples/dual-channel/parent.py
	@ls -l $@

bench: setup-python build
	$(PY) bench/run.py

# A thousand spawn/request/stop cycles: fds, children and socket files must come back to the start.
soak: setup-python
	cd python && ASPECT_IPC_SOAK_CYCLES=1000 ../$(PYTEST) $(PYTEST_FLAGS) \
	  tests/test_manager.py -k "spawn_stop_cycles and asyncio"

clean:
	rm -rf $(BUILD) $(VENV) workers-node/node_modules workers-node/dist \
	  examples/dual-channel/build integration-tests/workers/node/build
