# The two commands a newcomer needs:  make serve  ·  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: serve test test-sqlite test-postgres bench openapi clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Kizuna needs Python >= 3.11: run 'make PYTHON=python3.11 ...'" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

## serve: create the virtualenv, install, migrate the SQLite file (./data/kizuna.db), run on 127.0.0.1:8000
serve: $(VENV)/.runtime
	$(BIN)/kizuna serve --host $(HOST) --port $(PORT)

## test: install with dev extras and run the whole suite on SQLite, then on PostgreSQL
test: $(VENV)/.dev
	PYTHON=$(BIN)/python .ci/test-suites

test-sqlite: $(VENV)/.dev
	$(BIN)/python -m pytest

test-postgres: $(VENV)/.dev
	PYTHON=$(BIN)/python SUITES=postgres .ci/test-suites

## openapi: rewrite openapi.yaml from the app (a test fails when they differ)
openapi: $(VENV)/.runtime
	$(BIN)/python -m app.openapi_doc

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
