# First commands on a fresh machine: `make up` (run Gavel locally) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
CACHE ?= $(or $(GAVEL_CACHE_DIR),$(HOME)/.cache/gavel)
VENV ?= .venv
PIP_CACHE := $(CACHE)/pip
CONSTRAINTS := deploy/constraints.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(CONSTRAINTS) | sha1sum | cut -c1-12)
DEVSTACK := $(PYTHON) deploy/local/devstack.py

.PHONY: install up test lint stack-start stack-stop stack-status bench clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --cache-dir $(PIP_CACHE) --upgrade pip
	$(VENV)/bin/pip install -q --cache-dir $(PIP_CACHE) -c $(CONSTRAINTS) -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## Run the whole service locally: dev stack + migrations + API + relay + worker.
up: install
	$(DEVSTACK) run --name dev -- $(VENV)/bin/gavel up

## Run the whole test suite against the real dev stack (started and stopped by the tests).
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

stack-start:
	$(DEVSTACK) start --name dev
stack-stop:
	$(DEVSTACK) stop --name dev
stack-status:
	$(DEVSTACK) status --name dev

bench: install
	$(DEVSTACK) run --name bench -- $(VENV)/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
