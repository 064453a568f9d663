import pytest
from django.db import connection

from tests.helpers import HEALTH_TOKEN, at, child_env, tick
from tests.jobs import control
from tests.packaging import build


@pytest.fixture(autouse=True)
def _reset_control():
    control.reset()
    yield
    control.reset()


@pytest.fixture
def jobs(settings):
    """Set the registry: jobs([...]) replaces CRONTABBER_JOBS for this test."""

    def set_jobs(entries):
        settings.CRONTABBER_JOBS = entries
        return entries

    return set_jobs


@pytest.fixture
def registry(jobs, request):
    """The test module's REGISTRY, ticked at 10:00 and 11:00 on 2026-05-01."""
    jobs(request.module.REGISTRY)
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 11:00"))


class Receivers:
    """Signal receivers connected for one test: connect(signal, receiver); disconnect(signal,
    receiver) where the test needs it gone before it ends; whatever is left is disconnected
    after the test, whether it passed or not."""

    def __init__(self):
        self._connected = []

    def connect(self, signal, receiver):
        signal.connect(receiver)
        self._connected.append((signal, receiver))

    def disconnect(self, signal, receiver):
        signal.disconnect(receiver)
        self._connected.remove((signal, receiver))

    def disconnect_all(self):
        while self._connected:
            signal, receiver = self._connected.pop()
            signal.disconnect(receiver)


@pytest.fixture
def receivers():
    """receivers.connect(signals.attempt_started, receiver): connected for this test only."""
    connected = Receivers()
    yield connected
    connected.disconnect_all()


@pytest.fixture
def child_database(monkeypatch):
    """Child-process jobs (`process: True`) connect where this test's database is."""
    for key, value in child_env().items():
        if key in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
            monkeypatch.setenv(key, value)


@pytest.fixture
def health_token(settings):
    """The health and metrics endpoints' bearer token is HEALTH_TOKEN (tests.helpers.BEARER)."""
    settings.CRONTABBER_HEALTH_TOKEN = HEALTH_TOKEN
    return HEALTH_TOKEN


def pytest_collection_modifyitems(config, items):
    # Tests of real locking among real concurrent processes need a database server
    # (PostgreSQL or MariaDB); a few need PostgreSQL itself.
    vendor = connection.vendor
    skips = {
        "server_db": vendor == "sqlite"
        and pytest.mark.skip(reason="needs a database server (DATABASE_URL=postgres://... or mysql://...)"),
        "postgres": vendor != "postgresql"
        and pytest.mark.skip(reason="needs PostgreSQL (run with DATABASE_URL=postgres://...)"),
    }
    for item in items:
        for marker, skip in skips.items():
            if skip and marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The distribution as the package index would have it (tests.packaging.build): its
    wheel, its sdist and the tree they came from; built once for the packaging tests and
    the quickstart's."""
    return build(tmp_path_factory.mktemp("packaging"))
