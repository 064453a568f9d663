"""Secrets stay out of what crontabber stores and sends: a job that prints and holds
secrets, run in-process and as a child process, with the real Sentry SDK (an in-memory
transport), Django's locmem mail and the real database."""

import json
import logging

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from sentry_sdk.integrations.logging import LoggingIntegration

from crontabber import scrub
from crontabber.models import Job, Log
from tests.helpers import at, tick
from tests.jobs.management.commands.leaky import SECRETS
from tests.sentry import sentry_in_memory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sentry():
    """The SDK with webapp/settings.py's scrubbers (send_default_pii off: the default), on an in-memory transport."""
    with sentry_in_memory(
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[LoggingIntegration()],
        event_scrubber=scrub.sentry_event_scrubber(),
        before_send=scrub.sentry_before_send,
    ) as transport:
        yield transport


@pytest.fixture
def bare_sentry():
    """The SDK with none of crontabber's scrubbers: crontabber's own events are scrubbed anyway."""
    with sentry_in_memory(default_integrations=False) as transport:
        yield transport


@pytest.fixture
def leaky(jobs, settings, request):
    settings.CRONTABBER_NOTIFY_EMAILS = ["ops@example.com"]
    process = request.param
    if process:  # the child process uses this test's database
        request.getfixturevalue("child_database")
    jobs([{"name": "leaky", "cmd": "leaky", "frequency": "1h", "process": process}])
    return process


def stored_text():
    rows = Log.objects.values_list("output", "traceback", "error_type", "error_value")
    return json.dumps([list(row) for row in rows] + list(Job.objects.values_list("last_error", flat=True)))


def assert_no_secret(where, text):
    for name, secret in SECRETS.items():
        assert secret not in text, f"the {name} secret reached {where}"


@pytest.mark.parametrize("leaky", [False, True], ids=["in-process", "process"], indirect=True)
def test_no_secret_reaches_the_database_the_mail_sentry_or_the_log(leaky, sentry, caplog):
    caplog.set_level(logging.INFO, logger="crontabber")
    tick(at("2026-05-01 10:00"))
    log = Log.objects.get()
    assert log.outcome == "failure"
    # Scrubbed, not dropped: the shape of each line is still there.
    assert "password=[scrubbed]" in log.output
    assert "postgres://[scrubbed]@db.internal:5432/site" in log.output
    assert "Authorization: [scrubbed]" in log.output and '"api_key": "[scrubbed]"' in log.output
    assert "token=[scrubbed]" in Job.objects.get().last_error
    assert_no_secret("the database", stored_text())

    (message,) = mail.outbox
    assert "password=[scrubbed]" in message.body
    assert_no_secret("the mail", message.subject + message.body)

    (event,) = sentry.events
    envelope = json.dumps(sentry.items)
    assert "password=[scrubbed]" in event["contexts"]["crontabber"]["output"]
    assert_no_secret("a Sentry envelope", envelope)
    assert_no_secret("the log", "\n".join(record.getMessage() for record in caplog.records))
    if not leaky:  # in-process: the exception, its frames' locals and the breadcrumbs are in the event
        (frame,) = [f for f in event["exception"]["values"][0]["stacktrace"]["frames"] if f["function"] == "handle"]
        assert "db_password" in frame["vars"] and frame["vars"]["db_password"] != repr(SECRETS["local"])
        assert any("password=[scrubbed]" in crumb["message"] for crumb in event["breadcrumbs"]["values"])


@pytest.mark.parametrize("leaky", [False], indirect=True)
def test_crontabbers_own_events_are_scrubbed_whatever_the_sdk_is_told(leaky, bare_sentry):
    tick(at("2026-05-01 10:00"))
    (event,) = bare_sentry.events
    assert "db_password" in json.dumps(event)
    assert_no_secret("a Sentry envelope", json.dumps(bare_sentry.items))


@pytest.mark.parametrize("leaky", [False, True], ids=["in-process", "process"], indirect=True)
def test_notify_output_off_leaves_output_out_of_mail_and_sentry(leaky, sentry, settings):
    settings.CRONTABBER_NOTIFY_OUTPUT = False
    tick(at("2026-05-01 10:00"))
    assert "[scrubbed]" in Log.objects.get().output  # still kept, scrubbed, on the Log row
    (message,) = mail.outbox
    assert "connecting with" not in message.body and "Traceback" not in message.body
    assert "left out of mails (CRONTABBER_NOTIFY_OUTPUT)" in message.body
    assert "Error:    " in message.body  # the one-line error is still there
    (event,) = sentry.events
    assert "output" not in event["contexts"]["crontabber"] and "breadcrumbs" not in event
    sent = json.dumps(sentry.items)  # (the job's source lines are there, as context of its frames)
    assert "leaky: connecting with" not in sent and "password=[scrubbed]\\nDATABASE_URL" not in sent


def test_extra_patterns_are_added_and_the_defaults_can_be_replaced(settings):
    line = "password=hunter2 employee=E12345 sessionkey ABCD-EFGH"
    settings.CRONTABBER_SCRUB_PATTERNS = [r"employee=(?P<secret>\w+)", r"[A-Z]{4}-[A-Z]{4}"]
    assert scrub.text(line) == "password=[scrubbed] employee=[scrubbed] sessionkey [scrubbed]"
    settings.CRONTABBER_SCRUB_DEFAULTS = False
    assert scrub.text(line) == "password=hunter2 employee=[scrubbed] sessionkey [scrubbed]"


@pytest.mark.parametrize(
    "line, expected",
    [
        ("password=hunter2 ok", "password=[scrubbed] ok"),
        ("DB_PASSWORD: hunter2", "DB_PASSWORD: [scrubbed]"),
        ("SECRET_KEY=abc", "SECRET_KEY=[scrubbed]"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key = [scrubbed]"),
        ("key AKIAIOSFODNN7EXAMPLE here", "key [scrubbed] here"),
        ("postgres://app:s3cr%40t@db:5432/site down", "postgres://[scrubbed]@db:5432/site down"),
        ("https://ghp_abc123@github.com/x.git", "https://[scrubbed]@github.com/x.git"),
        ('curl -H "Authorization: Basic dXNlcjpwYXNz" x', 'curl -H "Authorization: [scrubbed]" x'),
        ("run --api-key abc123 --verbose", "run --api-key [scrubbed] --verbose"),
        ("GET /x?token=abc&page=2", "GET /x?token=[scrubbed]&page=2"),
        ("see https://example.com/a?b=c@d", "see https://example.com/a?b=c@d"),
        ("12 rows, 0 errors in 0.5 s", "12 rows, 0 errors in 0.5 s"),
    ],
)
def test_the_default_patterns(line, expected):
    assert scrub.text(line) == expected


def test_a_bad_pattern_is_a_one_line_error(jobs, settings):
    settings.CRONTABBER_SCRUB_PATTERNS = ["(unclosed"]
    with pytest.raises(ImproperlyConfigured, match=r"^CRONTABBER_SCRUB_PATTERNS: bad pattern '\(unclosed': missing \)"):
        scrub.text("x")
    assert [e.id for e in scrub.check_patterns()] == ["crontabber.E009"]
    jobs([{"name": "j", "cmd": "noop", "frequency": "1h"}])
    with pytest.raises(CommandError, match=r"^CRONTABBER_SCRUB_PATTERNS: bad pattern"):
        call_command("cronrun")  # before any job runs
    assert not Log.objects.exists()
