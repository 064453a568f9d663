"""Every secret shape of tests/scrub_corpus.py kept out of everything an attempt leaves:
the scrubber alone, a stream of output lines (a line split in pieces, a PEM block), and a
real job's Log row, a mail through a real SMTP server, an envelope a real Sentry SDK sends
over HTTP and the log, in process and in a child process; a task's return value too.
Ordinary output goes through unchanged."""

import json
import logging
import re

import pytest
from sentry_sdk.integrations.logging import LoggingIntegration

from crontabber import scrub
from crontabber.engine.execution import OutputCapture
from crontabber.models import Job, Log
from crontabber.scrub import finders
from tests.helpers import at, tick
from tests.mailserver import smtp_server
from tests.scrub_corpus import ORDINARY, PEM_BODY, SHAPES
from tests.sentry import sentry_over_http

SECRETS = {name: secret for name, _, secret in SHAPES}


def test_the_corpus_holds_sixty_shapes_or_more_each_secret_distinct():
    assert len(SHAPES) >= 60 and len(set(SECRETS.values())) == len(SHAPES)


@pytest.mark.parametrize("name, text, secret", SHAPES, ids=[name for name, _, _ in SHAPES])
def test_each_shape_is_scrubbed(name, text, secret):
    assert secret not in scrub.text(text) and "[scrubbed]" in scrub.text(text)


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_output_is_left_as_it_is(line):
    assert scrub.text(line) == line


def leaks(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, secret in SECRETS.items() if secret in text]


def captured(*writes: str) -> tuple[str, list[str]]:
    """What OutputCapture keeps (a large tail) and logs of these writes."""
    capture, records = OutputCapture("corpus"), []
    capture.tail_chars = 10**9
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("crontabber")
    logger.addHandler(handler)
    try:
        for text in writes:
            capture.write(text)
        return capture.finish(), records
    finally:
        logger.removeHandler(handler)


def test_each_credential_format_is_in_the_corpus_and_tried_where_it_starts():
    texts = [text for _, text, _ in SHAPES]
    for pattern in (alternative for entry in finders.FORMAT_LIST for alternative in entry.split("|\\b")):
        alone = [match.span() for text in texts for match in re.finditer(pattern, text)]
        assert alone, f"no shape of the corpus has the format {pattern}"
        together = {match.span() for text in texts for match in finders.FORMATS.finditer(text)}
        assert set(alone) <= together, pattern


def test_a_key_and_its_value_split_by_a_long_line_are_still_seen_together():
    secret = "split-secret-value-0099"
    for filler in range(65536 - 40, 65536 + 20, 3):  # the key, the value, or both at the piece's end
        line = json.dumps({"data": "x" * filler, "password": secret, "more": "y" * 70000})
        tail, logged = captured(line[: len(line) // 3], line[len(line) // 3 :] + "\n")
        assert secret not in tail and not any(secret in record for record in logged), filler


def test_the_lines_of_a_private_key_are_scrubbed_whole():
    tail, logged = captured(
        f"key:\n-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY[::-1]}\n", "-----END PRIVATE KEY-----\nafter\n"
    )
    assert PEM_BODY not in tail and PEM_BODY[::-1] not in tail and "after" in tail
    assert not any(PEM_BODY in record for record in logged)


@pytest.fixture
def corpus_job(jobs, settings, monkeypatch, request):
    settings.CRONTABBER_NOTIFY_EMAILS = ["ops@example.com"]
    settings.CRONTABBER_OUTPUT_TAIL_CHARS = 100_000
    if request.param:  # the child process uses this test's database
        request.getfixturevalue("child_database")
    jobs([{"name": "corpus", "cmd": "corpus", "frequency": "1h", "process": request.param}])


@pytest.mark.django_db
@pytest.mark.parametrize("corpus_job", [False, True], ids=["in-process", "process"], indirect=True)
def test_no_shape_leaves_the_attempt_by_any_way(corpus_job, settings, caplog):
    caplog.set_level(logging.INFO, logger="crontabber")
    with (
        smtp_server(settings) as mails,
        sentry_over_http(default_integrations=False, integrations=[LoggingIntegration()]) as sentry,
    ):
        tick(at("2026-05-01 10:00"))
        envelopes = sentry.all()
    log = Log.objects.get()
    assert log.outcome == "failure" and "[scrubbed]" in log.output and "[scrubbed]" in log.error_value
    row = json.dumps([log.output, log.error_value, log.traceback, Job.objects.get().last_error])
    (mail,) = mails
    found = leaks("the Log row", row) + leaks("the mail", mail.decode(errors="replace"))
    found += leaks("Sentry", envelopes.decode(errors="replace"))
    found += leaks("the log", "\n".join(record.getMessage() for record in caplog.records))
    assert found == [] and b"[scrubbed]" in envelopes


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["", "default"], ids=["in the runner", "on the immediate backend"])
def test_a_task_that_returns_secrets_leaves_none_on_its_row(jobs, backend):
    jobs([{"name": "leaky", "task": "tests.jobs.tasks.leaky", "frequency": "1h", "backend": backend}])
    tick(at("2026-05-01 10:00"))
    log = Log.objects.get()
    assert log.outcome == "success" and "[scrubbed]" in log.output, log.output
    assert leaks("the Log row", log.output) == []
