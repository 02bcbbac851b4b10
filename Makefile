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

.PHONY: help setup setup-python setup-node setup-go setup-docs build build-node build-go \
        test lint test-python test-node test-go integration demo demo-python demo-node demo-go \
        dist dist-python dist-node bench soak fuzz docs clean

help:
	@echo "make demo         run the dual-channel example against the python, node and go workers"
	@echo "make test         lint + every test suite (python, node, go, integration)"
	@echo "make integration  the cross-language integration suite alone"
	@echo "make bench        benchmarks against a raw socket, multiprocessing.Pipe and gRPC"
	@echo "make dist         the frozen parent binary (PyInstaller), the wheel and sdist, the npm tarball"
	@echo "make lint         ruff + mypy --strict on the Python package, cargo fmt + clippy on its core"
	@echo "make docs         the documentation site (MkDocs, --strict) into .build/docs"
	@echo "make fuzz         long fuzz runs (minutes): hypothesis, go test -fuzz, the Node fuzz test"

# ---- set-up ---------------------------------------------------------------------------------
setup: setup-python setup-node setup-go

setup-python: $(VENV)/.installed $(VENV)/.core-installed
$(VENV)/.installed: python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e 'python[dev]'
	touch $@

# The compiled core (python/core, Rust and PyO3, built by maturin from crates.io): optional for
# users (the package falls back to pure Python without it), built and tested here.
CORE_SOURCES := $(wildcard python/core/*.toml python/core/Cargo.lock python/core/*.pyi python/core/src/*.rs)
$(VENV)/.core-installed: $(VENV)/.installed $(CORE_SOURCES)
	@command -v cargo >/dev/null || { echo "make: the compiled core (python/core) needs Rust's cargo: \
	  install it (https://rustup.rs, or your system's cargo package) and run make again"; exit 1; }
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pip install -q --disable-pip-version-check \
	  --no-build-isolation ./python/core
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
	cd python/core && cargo fmt --check && cargo clippy --quiet --release -- -D warnings

# Everything the suites need is built first; then the suites run side by side, each one's output
# printed whole when it ends. On two cores this takes about half the time of one after another:
# most of a suite's time is spent waiting on the worker processes it starts. -o: nothing is built
# again while the suites run (npm pack, say, rewrites the Node SDK's dist/ that running tests load).
TEST_SUITES := lint test-python test-node test-go integration docs
TEST_BUILT := setup setup-python setup-node setup-go setup-docs build build-node build-go dist
test: setup build dist setup-docs
	$(MAKE) --no-print-directory --keep-going --output-sync=target -j$(words $(TEST_SUITES)) \
	  $(addprefix -o ,$(TEST_BUILT)) $(TEST_SUITES)

# The codec's and the channel's frame tests once more without the compiled core: the pure-Python
# path users get without it.
CODEC_TESTS := tests/test_compiled_core.py tests/test_codec_checks.py tests/test_codec_hooks.py \
  tests/test_vectors.py tests/test_fuzz_codecs.py tests/test_borrowed_buffers.py \
  tests/test_fast_reader.py tests/test_channel_socket.py
test-python: setup-python
	cd python && ../$(PYTEST) $(PYTEST_FLAGS)
	cd python && ASPECT_IPC_PURE_PYTHON=1 ../$(PYTEST) $(PYTEST_FLAGS) $(CODEC_TESTS)

test-node: build-node
	cd workers-node && npm test --silent

# The brief fuzz runs count executions (about 5 s each on an idle machine) rather than time:
# before Go 1.27 a -fuzztime duration can end in "context deadline exceeded" with no finding when
# a loaded machine holds a fuzz worker past the deadline (go.dev/issue/75804).
test-go: setup-go
	cd workers-go && go vet ./... && go test -race -count=1 ./...
	cd workers-go && go test -run '^$$' -fuzz FuzzLengthPrefixedDecoder -fuzztime 100000x . \
	  && go test -run '^$$' -fuzz FuzzMessagePackDecode -fuzztime 60000x .

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
dist: build $(FROZEN) dist-python dist-node
$(FROZEN): examples/dual-channel/parent.py $(wildcard python/src/aspect_ipc/*.py) $(VENV)/.installed \
  $(VENV)/.core-installed
	$(PY) -m PyInstaller --noconfirm --clean --log-level WARN --onefile --strip \
	  $(addprefix --exclude-module ,$(FROZEN_EXCLUDES)) \
	  --name aspect-ipc-demo --distpath $(BUILD)/dist --workpath $(BUILD)/pyinstaller \
	  --specpath $(BUILD)/pyinstaller examples/dual-channel/parent.py
	@ls -l $@

# The packages a user installs: wheel and sdist (an isolated build, as a release is built; twine
# checks their metadata), the npm tarball (its prepare script builds the SDK). The Go module is
# its source directory. integration-tests/test_packaging.py builds the same packages in a temporary
# directory, installs them outside the repository and runs them.
PY_DIST := $(BUILD)/dist/python
NODE_DIST := $(BUILD)/dist/node
dist-python: setup-python
	rm -rf $(PY_DIST)
	$(PY) -m build --outdir $(PY_DIST) python
	$(PY) -m maturin build --quiet --release --out $(PY_DIST) --manifest-path python/core/Cargo.toml
	$(PY) -m twine check --strict $(PY_DIST)/*
	@ls -l $(PY_DIST)
dist-node: setup-node
	rm -rf $(NODE_DIST) && mkdir -p $(NODE_DIST)
	cd workers-node && npm pack --silent --pack-destination ../$(NODE_DIST)
	@ls -l $(NODE_DIST)

# The chart (matplotlib) and the gRPC peer (grpcio, and a Go server built here) come with the bench
# extra only: make test never needs them. --fresh: the issue's targets are defined on fresh processes.
bench: setup-python build
	$(PY) -c 'import matplotlib, grpc' 2>/dev/null \
	  || $(PY) -m pip install -q --disable-pip-version-check -e 'python[bench]'
	cd bench/grpc && GOWORK=off GOFLAGS=-mod=mod go build -o ../../$(BUILD)/bench/grpc-echo-server .
	$(PY) bench/run.py --fresh

# The documentation site, built with --strict (a broken link or API reference fails it). MkDocs
# comes with the docs extra only, installed here when missing; integration-tests/test_docs.py runs
# the site's programs.
setup-docs: setup-python
	$(PY) -c 'import material, mkdocstrings_handlers.python' 2>/dev/null \
	  || $(PY) -m pip install -q --disable-pip-version-check -e 'python[docs]'
docs: setup-docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet --site-dir $(BUILD)/docs
	@echo "docs: $(BUILD)/docs/index.html"

# Minutes: the full load (32 mixed workers x 1000 requests in flight) and chaos (random SIGKILLs
# under that load, slow consumers), then 1000 spawn/request/stop cycles across languages that
# must end with the fds, threads, tasks, children and socket files they started with. make test
# runs short versions of the same tests; -s prints their figures. Then the supervisor's: stops
# at every moment of a restart, 100 cancelled spawns per language, a 100 MiB stderr flood, 100
# workers starting while another answers.
soak: setup-python build
	ASPECT_IPC_LOAD_SCALE=full ASPECT_IPC_SOAK_CYCLES=1000 $(PYTEST) $(PYTEST_FLAGS) -s \
	  integration-tests/test_load.py integration-tests/test_chaos.py \
	  integration-tests/test_soak.py integration-tests/test_supervisor_lifecycle.py -k "not trio"
	cd python && ASPECT_IPC_LOAD_SCALE=full ASPECT_IPC_SOAK_CYCLES=1000 ASPECT_IPC_STDERR_FLOOD_MB=100 \
	  ../$(PYTEST) $(PYTEST_FLAGS) -s tests/test_supervisor_stderr.py \
	  tests/test_supervisor_spawn_storm.py tests/test_supervisor_cancel.py

# Minutes: the fuzzers make test runs briefly, run long. Python: the hypothesis fuzz modules
# with their long profile (the statistics give the inputs tried per property); Go: every Fuzz
# target for 60 s each; Node: the randomized chunking and corruption test, many iterations.
# Every fuzzer runs even when an earlier one found something; the target fails at the end. A Go
# run that fails with "context deadline exceeded" and writes no failing input is the engine's own
# race with its -fuzztime deadline (go.dev/issue/75804, before Go 1.27), not a finding.
fuzz: setup-python setup-go build-node
	@failed=""; log=$$(mktemp); \
	( cd python && ASPECT_IPC_FUZZ=long ../$(PYTEST) $(PYTEST_FLAGS) --hypothesis-show-statistics \
	    tests/test_fuzz_framing.py tests/test_fuzz_codecs.py tests/test_fuzz_jsonrpc.py ) \
	  || failed="$$failed python"; \
	for found in $$(cd workers-go && grep -o '^func Fuzz[A-Za-z0-9_]*' *_test.go internal/*/*_test.go | sed 's/:func /:/'); do \
	  pkg=./$$(dirname $${found%%:*}); target=$${found##*:}; \
	  echo "go fuzz: $$pkg $$target"; \
	  if ! ( cd workers-go && go test -run '^$$' -fuzz "^$$target$$" -fuzztime 60s $$pkg ) 2>&1 | tee $$log; then \
	    if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
	      echo "go fuzz: $$target: the engine's deadline race (go.dev/issue/75804), no finding"; \
	    else failed="$$failed go:$$target"; fi; \
	  fi; \
	done; rm -f $$log; \
	( cd workers-node && ASPECT_IPC_FUZZ_ITERATIONS=20000 node --test dist/test/fuzz.test.js ) \
	  || failed="$$failed node"; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in:$$failed"; exit 1; fi; echo "fuzz: no findings"

clean:
	rm -rf $(BUILD) $(VENV) workers-node/node_modules workers-node/dist \
	  examples/dual-channel/build integration-tests/workers/node/build
