# Two commands (see README):
#   make repro   create .venv, install everything, run `dvc repro` (cpu profile, ~45 min on 2 cores)
#   make test    install what is missing, run the test suite (includes a smoke-profile pipeline run)
#   make test-fast  the same without the tests marked slow (pipeline, notebooks, DDP, validator): the inner loop
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(BIN)):$(PATH)
export ITERATIVE_DO_NOT_TRACK := 1
export PYTHONHASHSEED := 0
# On 2 cores torch's busy-waiting OpenMP threads stall each other; passive waiting avoids it.
export OMP_WAIT_POLICY := PASSIVE
# Progress bars refresh every 5 s, so the executed notebooks in results/notebooks stay small.
export TQDM_MININTERVAL := 5

.PHONY: repro test test-fast setup check-python kernel clean-venv lock check-library

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m 'not slow' tests

setup: $(STAMP)

check-python:
	@if ! command -v $(PYTHON) >/dev/null 2>&1; then \
	  if [ "$(PYTHON)" = python3.11 ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "python3.11 not found: installing python3.11 and python3.11-venv with apt-get (running as root)"; \
	    apt-get update -qq >/dev/null && apt-get install -y -qq python3.11 python3.11-venv >/dev/null; \
	  else \
	    echo "Python 3.11 is required: install python3.11 and python3.11-venv (Debian/Ubuntu: sudo apt-get install python3.11 python3.11-venv), or run make PYTHON=/path/to/python3.11"; exit 1; \
	  fi; \
	fi
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || \
	  { echo "$(PYTHON) is not Python 3.11: run make PYTHON=/path/to/python3.11"; exit 1; }
	@if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "the venv module is missing: installing python3.11-venv with apt-get (running as root)"; \
	    apt-get update -qq >/dev/null && apt-get install -y -qq python3.11-venv >/dev/null; \
	  else \
	    echo "The venv module is missing: install it (Debian/Ubuntu: sudo apt-get install python3.11-venv)"; exit 1; \
	  fi; \
	fi

# Re-install when the lock or the package metadata change: the exact versions of requirements.lock, no
# resolver (see its header), then this package itself without dependencies.
$(STAMP): pyproject.toml requirements.lock | check-python
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q --no-deps --ignore-requires-python -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name gram --display-name "GRAM (.venv)" >/dev/null
	touch $@

# Rewrite requirements.lock from the current venv (after a deliberate upgrade; the header is kept).
lock: $(STAMP)
	{ sed -n '/^#/p' requirements.lock; $(BIN)/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# The library route (pyproject's ranges, not the lock) in a fresh venv of another Python, outside the checkout:
# the HEAR API and the gram command on a small checkpoint (tools/library_check.py).
PYTHON_LIB ?= python3.13
check-library:
	rm -rf .venv-lib && $(PYTHON_LIB) -m venv .venv-lib
	.venv-lib/bin/python -m pip install -q --upgrade pip
	.venv-lib/bin/pip install -q .
	cd "$$(mktemp -d)" && $(abspath .venv-lib)/bin/python $(abspath tools/library_check.py)

clean-venv:
	rm -rf $(VENV)
