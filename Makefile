# Every target creates .venv first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup browser test parity bench audit flake clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# One command: torch is pinned in pyproject.toml, so lightning cannot pull a CUDA build.
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

# Headless Chromium for the report hub's browser test (tests/engine/test_hub_browser.py), from
# Debian's packages: nothing is done when both programs are there; apt-get update only before installing.
BROWSER_PACKAGES := chromium chromium-driver
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "browser: chromium and chromedriver present"; \
	else \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y $(BROWSER_PACKAGES); \
	fi

test: setup browser
	$(PY) -m pytest tests -n auto

parity: setup
	$(PY) -m pytest parity/ -n auto

bench: setup
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache

# The whole suite ten times, worker counts and hash seeds varied: the goal is zero failures.
flake: setup
	@mkdir -p .bench; fails=0; \
	for i in 1 2 3 4 5 6 7 8 9 10; do \
	  n=$$(echo "0 1 2 auto" | cut -d' ' -f$$(( i % 4 + 1 ))); \
	  PYTHONHASHSEED=$$i $(PY) -m pytest parity/ -n $$n -q -p no:cacheprovider > .bench/flake-$$i.log 2>&1; rc=$$?; \
	  [ $$rc -eq 0 ] || fails=$$((fails + 1)); \
	  echo "run $$i: -n $$n PYTHONHASHSEED=$$i exit $$rc: $$(grep -E '[0-9]+ (passed|failed)' .bench/flake-$$i.log | tail -1)"; \
	done; echo "flake: $$fails of 10 runs failed"; [ $$fails -eq 0 ]

# Injected bugs must each be caught at their declared stage (docs/design.md).
audit: setup
	$(PY) -m parity audit --sensitivity --json reports/audit.json
