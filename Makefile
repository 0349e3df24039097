# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FTM    := $(BIN)/fool-the-model
STAMP  := $(VENV)/.installed
export FTM_DATA_DIR ?= data

.PHONY: run test install data model lint typecheck pytest browser services bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,scale,dev]'
	touch $(STAMP)

install: $(STAMP)

data: $(STAMP)
	$(FTM) fetch-data

# Trains the first model only when the data directory has none.
model: data
	$(FTM) ensure-model

run: model
	$(FTM) serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check server game_rules tests bench
	$(BIN)/ruff format --check server game_rules tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian's Chromium for the browser tests (Playwright's own browser download cannot work here).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# PostgreSQL, Redis and nginx for the scale-out tests; the tests start their own servers on
# loopback (nginx in the foreground, with its files in a temporary directory).
services:
	@command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && \
	  test -x /usr/sbin/nginx || \
	  { apt-get update -qq && apt-get install -y -qq postgresql redis-server nginx; }

# The whole suite on SQLite, then the server tests again on PostgreSQL.
pytest: $(STAMP) data browser services
	$(BIN)/pytest -q
	FTM_TEST_DATABASE=postgresql $(BIN)/pytest -q tests/server

test: lint typecheck pytest

bench: model
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/load.py

screenshots: model browser
	$(BIN)/python bench/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
