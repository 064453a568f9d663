# Two commands do all setup on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# Names of this checkout's own on the shared servers (databases, image tags): two checkouts
# testing side by side never meet.
CHECKOUT := $(shell printf '%s' "$(CURDIR)" | cksum | cut -d' ' -f1)
PG_URL ?= postgres://postgres@127.0.0.1:5432/crontabber_$(CHECKOUT)
# Two stamps in one virtualenv: what running needs (`make run`, `make check`), and the test
# tools with the drivers and task backends the suite exercises, installed on top by the
# targets that test.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
# The distribution's name before 0.1.0: an editable install of it goes (once; harmless after).
FORGET_OLD_NAME = -m pip uninstall --quiet --yes crontabber 2>/dev/null || true
# `make run` and `make check` are development: without DEBUG=1 (or a SECRET_KEY) the host project refuses to start.
DEV := DEBUG=$${DEBUG:-1}

.PHONY: run test lint test-sqlite test-postgres postgres chromium check bench clean test-container container-tools

# The app and the host project's pinned runtime dependencies (Django, croniter, sentry-sdk,
# dj-database-url): SQLite, no test tools.
$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) $(FORGET_OLD_NAME)
	$(PY) -m pip install --quiet -e '.[pinned]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[pinned,postgres,tasks,rq,celery,test]'
	touch $(STAMP)

# Migrate the SQLite database under var/ and run the loop in the foreground.
run: $(RUN_STAMP)
	mkdir -p var
	$(DEV) $(PY) webapp/manage.py migrate --noinput
	$(DEV) PYTHON=$(abspath $(PY)) bin/run_crontabber.sh

# Lint and what the legs share (installed once), then the legs in three lanes side by side
# (bin/test_legs.sh): the whole suite on SQLite then on PostgreSQL (started if it is not
# running); on MariaDB then on PostgreSQL with Django 6 (its virtualenv made as the lane
# gets to it); the container image. Each leg's output goes to var/test-logs/<leg>.log,
# printed whole if the leg fails; one line per leg says how it went. The legs share no
# database (each its own name), Redis database (claimed per run) or file.
test: lint $(MYSQL_STAMP) chromium postgres mariadb container-tools
	MAKE="$(MAKE)" bin/test_legs.sh "sqlite postgres" "mariadb django6" container

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/shellcheck bin/*.sh docker/*.sh tests/container/*/*.sh .ci/run
	$(PY) bin/check_ceilings.py crontabber
	$(VENV)/bin/lint-imports

test-sqlite: $(STAMP) chromium
	DATABASE_URL=sqlite:///var/crontabber.sqlite3 $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(STAMP) postgres chromium
	DATABASE_URL=$(PG_URL) $(PY) -m pytest $(PYTEST_ARGS)

postgres:
	bin/ensure_postgres.sh

# --- MariaDB: the whole suite with Django 5.2 and mysqlclient (MYSQL_URL's database name
# is the prefix of the test database, as PG_URL's is). The driver is built against the
# system's client library, installed here when missing, as Chromium is below.
MYSQL_URL ?= mysql://root@127.0.0.1:3306/crontabber_$(CHECKOUT)
MYSQL_STAMP := $(VENV)/.installed-mysql

.PHONY: test-mariadb mariadb mysqlclient-build-deps

test-mariadb: $(MYSQL_STAMP) mariadb chromium
	DATABASE_URL=$(MYSQL_URL) $(PY) -m pytest $(PYTEST_ARGS)

$(MYSQL_STAMP): $(STAMP)
	$(MAKE) --no-print-directory mysqlclient-build-deps
	$(PY) -m pip install --quiet -e '.[pinned,postgres,mysql,tasks,rq,celery,test]'
	touch $(MYSQL_STAMP)

mysqlclient-build-deps:
	@(pkg-config --exists mysqlclient && command -v cc) >/dev/null 2>&1 || \
	  (export DEBIAN_FRONTEND=noninteractive; apt-get -o DPkg::Lock::Timeout=300 update -q && \
	   apt-get -o DPkg::Lock::Timeout=300 install -y -q pkg-config default-libmysqlclient-dev build-essential) || \
	  { echo "mysqlclient cannot be built: install pkg-config default-libmysqlclient-dev build-essential" >&2; exit 1; }

mariadb:
	bin/ensure_mariadb.sh

# --- Django 6: the whole suite with Django 6.1 (the `pinned-django6` extra) on Python
# 3.12+ in its own virtualenv, on PostgreSQL, and the database-independent tests (the
# wheel, the deploy files) that the other legs run on SQLite only. Skipped, and said so,
# where no such interpreter exists (bin/find_python.sh looks on PATH and under pyenv).
DJ6_VENV ?= .venv-dj6
DJ6_PY := $(DJ6_VENV)/bin/python
DJ6_STAMP := $(DJ6_VENV)/.installed

.PHONY: test-django6

test-django6: postgres chromium
	@python=$$(bin/find_python.sh 3.12) || \
	  { echo "test-django6: SKIPPED: no Python 3.12+ interpreter on this machine (Django 6 needs one)"; exit 0; }; \
	$(MAKE) --no-print-directory DJ6_PYTHON="$$python" $(DJ6_STAMP) && \
	echo "DATABASE_URL=$(PG_URL)_dj6 $(DJ6_PY) -m pytest $(PYTEST_ARGS)  # $$($(DJ6_PY) -m django --version), $$($(DJ6_PY) -V)" && \
	DATABASE_URL=$(PG_URL)_dj6 CRONTABBER_TEST_DB_INDEPENDENT=1 $(DJ6_PY) -m pytest $(PYTEST_ARGS)

$(DJ6_STAMP): pyproject.toml
	test -x $(DJ6_PY) || $(DJ6_PYTHON) -m venv $(DJ6_VENV)
	$(DJ6_PY) -m pip install --quiet --upgrade pip
	$(DJ6_PY) $(FORGET_OLD_NAME)
	$(DJ6_PY) -m pip install --quiet -e '.[pinned-django6,postgres,tasks,rq,celery,test]'
	touch $(DJ6_STAMP)

# docker/Dockerfile built with podman and its image run against PostgreSQL, in a database of
# its own (PG_URL's name + _container), then docker/docker-compose.yml run with docker
# compose and with podman-compose: docs/deploy.md#the-container-leg-of-make-test.
# Installs podman (and dockerd) where it can; where podman cannot run, says why and is skipped.
test-container: $(STAMP) postgres
	DATABASE_URL=$(PG_URL)_container PYTHON=$(abspath $(PY)) CONTAINER_TAG=test-$(CHECKOUT) bin/container_test.sh $(PYTEST_ARGS)

# The compose tools the container leg installs into the virtualenv, installed before the
# legs run side by side, so that no package appears under another leg's tests; where they
# cannot be, the container leg says so and skips their tests.
container-tools: $(STAMP)
	-$(PY) -m pip install --quiet --disable-pip-version-check \
	  $$($(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["container-test"])')

# tests/test_browser.py drives Debian's Chromium with Playwright (never `playwright install`,
# which downloads browsers). Installed here when missing; where it cannot be (not root, no
# apt), the browser tests are skipped and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q chromium) || \
	  echo "chromium could not be installed: the browser tests will be skipped" >&2

check: $(RUN_STAMP)
	$(DEV) $(PY) webapp/manage.py check

bench: $(STAMP) postgres
	$(PY) benchmarks/tick.py

clean:
	rm -rf $(VENV) $(DJ6_VENV) var .pytest_cache
