# Canopy — every command from the contract. Each target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY      := .venv/bin/python
VENV_OK := .venv/.installed
WEB     := services/web
WEB_OK  := $(WEB)/node_modules/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# POSTGRES=local: `make run`/`make api` start a PostgreSQL cluster under DATA_DIR (scripts/postgres.sh).
# REPLICAS=N: `make run` starts N API processes behind nginx (N > 1 needs PostgreSQL).
PG_DEPS := $(if $(filter local,$(POSTGRES)),deps-postgres)

.PHONY: help api run test lint types test-api test-web test-stack bench fuzz web-build deps-apt deps-apt-test deps-postgres clean

help:
	@echo "make run    - the whole stack on https://localhost:$${HTTPS_PORT:-8443} (REPLICAS=3 POSTGRES=local: scaled out)"
	@echo "make api    - only the API (gunicorn, one uvicorn worker)"
	@echo "make test   - every test (installs what is missing)"
	@echo "make lint   - ruff, mypy, eslint, tsc, generated types fresh"
	@echo "make types  - regenerate the web's contract types (protocol + REST)"
	@echo "make bench  - benchmarks -> docs/benchmarks.md";
	@echo "make fuzz   - long fuzz and soak runs"

# --- installs ---------------------------------------------------------------
$(VENV_OK): services/api/pyproject.toml
	@command -v python3 >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3 python3-venv; }
	@[ -x $(PY) ] || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e 'services/api[dev,postgres]'
	@touch $@

$(WEB_OK): $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web-build: $(WEB_OK)
	cd $(WEB) && npm run build

deps-apt:
	@command -v nginx >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx openssl; }

# Debian's PostgreSQL 15: POSTGRES=local, and the tests (storage tests run on it too).
deps-postgres:
	@[ -x /usr/lib/postgresql/15/bin/initdb ] || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

deps-apt-test: deps-apt deps-postgres
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# --- run ---------------------------------------------------------------------
api: $(VENV_OK) $(PG_DEPS)
	exec scripts/api.sh

run: $(VENV_OK) deps-apt web-build $(PG_DEPS)
	exec scripts/run.sh

# --- checks ------------------------------------------------------------------
lint: $(VENV_OK) $(WEB_OK)
	.venv/bin/ruff check services/api/canopy tests $(wildcard bench)
	.venv/bin/ruff format --check services/api/canopy tests $(wildcard bench)
	cd services/api && ../../.venv/bin/mypy
	cd services/api && ../../.venv/bin/mypy ../../tests ../../bench  # the same strict settings for tests and benchmarks
	cd $(WEB) && npm run lint
	$(MAKE) --no-print-directory types TYPES_CHECK=--check

# The web's contract types (services/web/src/lib/generated) from docs/protocol.schema.json and from the
# OpenAPI document of the app (exported to a temporary file); TYPES_CHECK=--check diffs instead of writing.
types: $(VENV_OK) $(WEB_OK)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) scripts/export-openapi.py -o "$$tmp/openapi.json" && \
	node $(WEB)/scripts/gen-types.mjs --openapi "$$tmp/openapi.json" $(TYPES_CHECK)

test-api: $(VENV_OK) deps-postgres
	$(PY) -m pytest tests/api -q

test-web: $(WEB_OK)
	cd $(WEB) && npm test && npm run build && npm run size

test-stack: $(VENV_OK) deps-apt-test web-build
	$(PY) -m pytest tests/stack tests/soak $(wildcard tests/e2e) -q

test: lint test-api test-web test-stack

bench: $(VENV_OK) deps-apt deps-postgres web-build
	$(PY) -m bench.run

fuzz: $(VENV_OK) deps-apt web-build
	CANOPY_FUZZ=long $(PY) -m pytest tests/api tests/stack/test_rest_fuzz_nginx.py tests/soak -q -m fuzz

clean:
	rm -rf .venv $(WEB)/node_modules $(WEB)/dist
