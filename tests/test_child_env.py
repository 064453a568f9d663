"""What a `process: True` job's child process gets of the runner's environment: all of
it by default, or only what CRONTABBER_CHILD_ENV names. Real child processes."""

import pytest

from crontabber.models import Log
from tests.helpers import at, tick

pytestmark = pytest.mark.django_db
# Python (locale coercion) and Django (TIME_ZONE) set these in the child itself.
SET_BY_THE_CHILD = {"LC_CTYPE", "TZ"}


@pytest.fixture
def runner_env(monkeypatch, jobs, child_database):
    monkeypatch.setenv("SITE_API_SECRET", "x")
    monkeypatch.setenv("KEEP_ONE", "1")
    monkeypatch.setenv("KEEP_TWO", "2")
    jobs([{"name": "env", "cmd": "envnames", "frequency": "1h", "process": True}])


def names_seen_by_the_child():
    tick(at("2026-05-01 10:00"))
    log = Log.objects.get()
    assert log.outcome == "success", log.output
    return set(log.output.removeprefix("env: ").split())


def test_by_default_the_child_inherits_everything(runner_env):
    assert {"SITE_API_SECRET", "KEEP_ONE", "KEEP_TWO", "DATABASE_URL"} <= names_seen_by_the_child()


def test_the_allow_list_names_what_the_child_gets(runner_env, settings):
    settings.CRONTABBER_CHILD_ENV = ["KEEP_*", "DATABASE_URL", "PATH"]
    seen = names_seen_by_the_child() - SET_BY_THE_CHILD
    # Besides: crontabber's own, the settings module, the import path and unbuffered output.
    assert seen == {
        "KEEP_ONE",
        "KEEP_TWO",
        "DATABASE_URL",
        "PATH",
        "DJANGO_SETTINGS_MODULE",
        "PYTHONPATH",
        "PYTHONUNBUFFERED",
        "CRONTABBER_RUNNER_PID",
    }


def test_a_comma_separated_string_works_too(runner_env, settings):
    settings.CRONTABBER_CHILD_ENV = "KEEP_ONE, DATABASE_URL"
    seen = names_seen_by_the_child()
    assert "KEEP_ONE" in seen and "KEEP_TWO" not in seen and "SITE_API_SECRET" not in seen
