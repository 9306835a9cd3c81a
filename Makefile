# Tenure: `make run` starts the four services on SQLite under ./var/; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# what `make run` needs: the services and grpcurl (extra `ops`), none of the test tools
RUN_STAMP := $(VENV)/.installed-run
BUF := node_modules/.bin/buf

.PHONY: run test protos lint typecheck buf-lint drift pytest bench soak clean

$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[ops]"
	touch $(RUN_STAMP)

# the tests and tools on top (a venv made by `make test` also serves `make run`)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,ops]"
	touch $(STAMP) $(RUN_STAMP)

$(BUF):
	npm install --no-audit --no-fund --silent @bufbuild/buf@1.75.0

# grpcurl and python -m services.token are in .venv/bin: `export PATH=$$PWD/.venv/bin:$$PATH` (README, Operating)
run: $(RUN_STAMP)
	mkdir -p var
	$(PY) -m services

protos: $(STAMP)
	$(PY) tools/protos.py

build/proto-deps: $(STAMP)
	$(PY) tools/protos.py --deps build/proto-deps

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

# strict types on the files and modules pyproject.toml's [tool.mypy] names
typecheck: $(STAMP)
	$(VENV)/bin/mypy

buf-lint: $(BUF) build/proto-deps
	$(BUF) lint

drift: $(STAMP)
	$(PY) tools/protos.py --check

# One worker per core; a worker that finishes early takes tests from the others (worksteal).
pytest: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -n auto --dist worksteal

test: lint typecheck buf-lint drift pytest

bench: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest tests/bench -q -s -p no:cacheprovider --override-ini addopts=

# 50 clients for 30 s against the four services as processes on PostgreSQL (SOAK_SECONDS, SOAK_CLIENTS)
soak: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) tests/soak/run_soak.py

clean:
	rm -rf $(VENV) node_modules build var
