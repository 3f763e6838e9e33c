# Every target creates .venv first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test parity bench audit flake clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# One command: torch is pinned in pyproject.toml, so lightning cannot pull a CUDA build.
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

test: setup
	$(PY) -m pytest tests -n auto

parity: setup
	$(PY) -m pytest parity/ -n auto

bench: setup
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache
