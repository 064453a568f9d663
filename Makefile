# Two commands do all setup on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/crontabber
STAMP := $(VENV)/.installed
# `make run` and `make check` are development: without DEBUG=1 (or a SECRET_KEY) the host project refuses to start.
DEV := DEBUG=$${DEBUG:-1}

.PHONY: run test lint test-sqlite test-postgres postgres chromium check bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[pinned,postgres,test]'
	touch $(STAMP)

# Migrate the SQLite database under var/ and run the loop in the foreground.
run: $(STAMP)
	mkdir -p var
	$(DEV) $(PY) webapp/manage.py migrate --noinput
	$(DEV) PYTHON=$(abspath $(PY)) bin/run_crontabber.sh

# Lint, then the whole suite on SQLite, then on PostgreSQL (started if it is not running).
test: lint test-sqlite test-postgres

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/shellcheck bin/*.sh docker/*.sh .ci/run

test-sqlite: $(STAMP) chromium
	DATABASE_URL=sqlite:///var/crontabber.sqlite3 $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(STAMP) postgres chromium
	DATABASE_URL=$(PG_URL) $(PY) -m pytest $(PYTEST_ARGS)

postgres:
	bin/ensure_postgres.sh

# tests/test_browser.py drives Debian's Chromium with Playwright (never `playwright install`,
# which downloads browsers). Installed here when missing; where it cannot be (not root, no
# apt), the browser tests are skipped and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q chromium) || \
	  echo "chromium could not be installed: the browser tests will be skipped" >&2

check: $(STAMP)
	$(DEV) $(PY) webapp/manage.py check

bench: $(STAMP) postgres
	$(PY) benchmarks/tick.py

clean:
	rm -rf $(VENV) var .pytest_cache
