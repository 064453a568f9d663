"""Alerts: Sentry events and Crons check-ins (the real SDK, an in-memory transport), and
e-mail (Django's locmem backend)."""

import subprocess
import sys
from datetime import timedelta

import pytest
import sentry_sdk
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.core.management.base import CommandError
from sentry_sdk.integrations.logging import LoggingIntegration

from crontabber.alerts import sentry as notify
from crontabber.models import Job
from crontabber.registry import effective_spec, load_jobs
from tests.helpers import ROOT, at, child_env, job, outcomes, tick
from tests.jobs import control
from tests.sentry import sentry_in_memory

pytestmark = pytest.mark.django_db


# --- Sentry ------------------------------------------------------------------------------


@pytest.fixture
def sentry():
    """The real SDK, initialised for this test only, with the logging integration (which
    would turn the runner's error line into a second event if nothing stopped it)."""
    options = dict(default_integrations=False, auto_enabling_integrations=False, environment="test")
    try:
        with sentry_in_memory(integrations=[LoggingIntegration()], **options) as transport:
            yield transport
    finally:
        notify._open_checkins.clear()
        assert not sentry_sdk.get_client().is_active()


def test_an_in_process_failure_is_captured_once_with_its_exception_and_tags(jobs, sentry, caplog):
    jobs([{"name": "bad", "cmd": "boom", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    (event,) = sentry.events
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError" and exception["value"] == "boom"
    assert exception["stacktrace"]["frames"][-1]["function"] == "handle"  # the job's own code
    assert event["tags"] == {
        "crontabber.job": "bad",
        "crontabber.slot": "2026-05-01T10:00:00+00:00",
        "crontabber.attempt": "1",
        "crontabber.outcome": "failure",
    }
    context = event["contexts"]["crontabber"]
    assert "about to fail" in context["output"] and context["error"] == "RuntimeError: boom"
    assert event["transaction"] == "crontabber bad" and event["environment"] == "test"
    # The runner's own error line was logged, and was not sent as a second event.
    assert any(r.name == "crontabber.failures" and r.levelname == "ERROR" for r in caplog.records)
    # The event's breadcrumbs are this attempt's log lines.
    assert [c["message"] for c in event["breadcrumbs"]["values"]][-1] == "bad: printed, not written"

    tick(at("2026-05-01 10:30"))  # the retry: captured too, as attempt 2
    assert [e["tags"]["crontabber.attempt"] for e in sentry.events] == ["1", "2"]


def test_a_success_or_a_skip_sends_no_event(jobs, sentry):
    jobs(
        [
            {"name": "ok", "cmd": "chatty", "frequency": "1h"},
            {"name": "skip", "cmd": "skipper", "frequency": "1h"},
        ]
    )
    tick(at("2026-05-01 10:00"))
    assert sentry.items == []


def test_a_timeout_is_a_message_event_with_the_output_tail(jobs, sentry):
    jobs([{"name": "hung", "cmd": "work", "cmd_args": ["--seconds", "30"], "frequency": "1h", "timeout": 0.5}])
    with pytest.raises(CommandError, match="did not succeed"):  # a one-shot tick with a failure exits 1
        call_command("cronrun")
    (event,) = sentry.events
    assert "exception" not in event and event["level"] == "error"
    assert event["message"].startswith("hung: timeout: Timeout: stopped after")
    assert event["tags"]["crontabber.outcome"] == "timeout" and event["tags"]["crontabber.job"] == "hung"
    assert event["fingerprint"] == ["crontabber", "hung", "timeout", "Timeout"]
    assert "working 30.0 s" in event["contexts"]["crontabber"]["output"]


def test_a_child_process_failure_is_one_message_event_with_its_output(jobs, sentry, child_database):
    jobs([{"name": "bad", "cmd": "boom", "frequency": "1h", "process": True}])
    tick(at("2026-05-01 10:00"))
    (event,) = sentry.events
    assert event["message"] == "bad: failure: ExitStatus: exit status 1: RuntimeError: boom"
    assert event["fingerprint"] == ["crontabber", "bad", "failure", "ExitStatus"]
    output = event["contexts"]["crontabber"]["output"]
    assert "about to fail" in output and "Traceback (most recent call last)" in output


def test_the_child_process_prints_an_uncaught_error_without_calling_sys_excepthook():
    """So an SDK initialised in the child (SENTRY_DSN) does not report the error a second time."""
    code = (
        "import sys; sys.excepthook = lambda *a: print('EXCEPTHOOK', file=sys.stderr)\n"
        "from crontabber.engine.child import main; sys.exit(main(['boom']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 1
    assert "EXCEPTHOOK" not in result.stderr
    assert result.stderr.rstrip().endswith("RuntimeError: boom") and "Traceback" in result.stderr


def test_nothing_is_sent_and_nothing_breaks_without_an_initialised_sdk(jobs):
    assert not sentry_sdk.get_client().is_active()
    jobs([{"name": "bad", "cmd": "boom", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    assert outcomes("bad") == [(at("2026-05-01 10:00"), "failure")]


def test_the_webapp_initialises_sentry_with_the_django_integration_when_sentry_dsn_is_set():
    # Without a DSN nothing imports the SDK (a fifth of a second on every tick and child).
    bare = subprocess.run(
        [sys.executable, "-c", "import django, sys; django.setup(); print('sentry_sdk' in sys.modules)"],
        env={**child_env(), "DJANGO_SETTINGS_MODULE": "webapp.settings", "SECRET_KEY": "test"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert bare.stdout.split() == ["False"], bare.stderr
    code = (
        "import django, sentry_sdk; django.setup(); client = sentry_sdk.get_client()\n"
        "print(client.is_active(), 'django' in client.integrations, client.dsn)"
    )
    env = {**child_env(), "DJANGO_SETTINGS_MODULE": "webapp.settings", "SECRET_KEY": "test"}
    without = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert without.stdout.split() == ["False", "False", "None"], without.stderr
    env["SENTRY_DSN"] = "https://public@sentry.invalid/1"
    with_dsn = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert with_dsn.stdout.split() == ["True", "True", "https://public@sentry.invalid/1"], with_dsn.stderr
    # Events are scrubbed (docs/security.md), and no personal data is sent.
    code = (
        "import django, sentry_sdk; django.setup(); options = sentry_sdk.get_client().options\n"
        "print(options['event_scrubber'].__module__, options['before_send'].__module__, options['send_default_pii'])"
    )
    scrubbed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert scrubbed.stdout.split() == ["crontabber.scrub.sentry", "crontabber.scrub.sentry", "False"], scrubbed.stderr


# --- Sentry Crons ----------------------------------------------------------------------------


def test_check_ins_are_off_by_default(jobs, sentry):
    jobs([{"name": "j", "cmd": "record", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    assert sentry.checkins == []


def test_each_attempt_checks_in_progress_then_ok_or_error(jobs, sentry, settings):
    settings.CRONTABBER_SENTRY_CRONS = True
    settings.CRONTABBER_SENTRY_CHECKIN_MARGIN_MINUTES = 7
    jobs(
        [
            {
                "name": "Hourly Report",
                "cmd": "record",
                "cron": "@hourly",
                "timeout": 90,
                "timezone": "Europe/Berlin",
            }
        ]
    )
    tick(at("2026-05-01 09:30"))  # first seen
    tick(at("2026-05-01 10:00"))
    control.FAILING.add("*")
    tick(at("2026-05-01 11:00"))
    started, ok, started_again, error = sentry.checkins
    config = {
        "schedule": {"type": "crontab", "value": "0 * * * *"},
        "timezone": "Europe/Berlin",
        "checkin_margin": 7,
        "max_runtime": 2,
    }
    assert started["monitor_slug"] == "hourly-report" and started["status"] == "in_progress"
    assert started["monitor_config"] == config and started["environment"] == "test"
    assert ok["status"] == "ok" and ok["check_in_id"] == started["check_in_id"] and ok["duration"] >= 0
    assert error["status"] == "error" and error["check_in_id"] == started_again["check_in_id"]
    assert started_again["check_in_id"] != started["check_in_id"]
    assert notify._open_checkins == {}
    assert len(sentry.events) == 1  # the failure, as well


def test_a_skip_checks_in_ok_and_the_setting_may_name_the_jobs(jobs, sentry, settings):
    settings.CRONTABBER_SENTRY_CRONS = ["s"]
    jobs(
        [
            {"name": "s", "cmd": "skipper", "frequency": "30m"},
            {"name": "other", "cmd": "noop", "frequency": "30m"},
        ]
    )
    tick(at("2026-05-01 10:00"))
    assert [(c["monitor_slug"], c["status"], c["monitor_config"]["schedule"]) for c in sentry.checkins] == [
        ("s", "in_progress", {"type": "interval", "value": 30, "unit": "minute"}),
        ("s", "ok", {"type": "interval", "value": 30, "unit": "minute"}),
    ]


def test_a_backlog_checks_in_once_for_its_newest_slot_not_once_per_late_slot(jobs, sentry, settings):
    settings.CRONTABBER_SENTRY_CRONS = True
    jobs([{"name": "h", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    sentry.items.clear()
    tick(at("2026-05-01 14:05"))  # back after four hours: 11:00, 12:00, 13:00 late, 14:00 on time
    assert [slot for slot, _ in outcomes("h")][-4:] == [at(f"2026-05-01 {h}:00") for h in (11, 12, 13, 14)]
    started, ok = sentry.checkins
    assert (started["status"], ok["status"]) == ("in_progress", "ok")
    assert ok["check_in_id"] == started["check_in_id"]
    assert started["monitor_config"]["schedule"] == {"type": "crontab", "value": "0 * * * *"}


@pytest.mark.parametrize("setting, sent", [("one", ["error"]), ("none", [])])
def test_a_late_slot_that_fails_checks_in_one_error_or_nothing(jobs, sentry, settings, setting, sent):
    settings.CRONTABBER_SENTRY_CRONS = True
    settings.CRONTABBER_SENTRY_CATCH_UP_CHECKINS = setting
    jobs([{"name": "h", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    sentry.items.clear()
    control.FAILING.add("*")
    tick(at("2026-05-01 13:05"))  # 11:00 fails: the backlog stops there
    assert [c["status"] for c in sentry.checkins] == sent
    assert len(sentry.events) == 1, "the failure itself is an event either way"


def test_a_rerun_of_past_slots_does_not_pose_as_on_time_check_ins(jobs, sentry, settings):
    settings.CRONTABBER_SENTRY_CRONS = True
    jobs([{"name": "h", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    tick(at("2026-05-01 10:00"))
    tick(at("2026-05-01 12:00"))
    sentry.items.clear()
    from freezegun import freeze_time

    with freeze_time(at("2026-05-01 12:30")):
        call_command("cronrerun", "h", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T11:00Z")
    assert len(outcomes("h")) == 5 and sentry.checkins == []


def test_a_slot_a_clock_change_moves_checks_in_once_as_on_time(jobs, sentry, settings):
    settings.CRONTABBER_SENTRY_CRONS = True
    jobs([{"name": "n", "cmd": "record", "frequency": "1d", "time": "02:30", "timezone": "America/New_York"}])
    tick(at("2027-03-13 12:00"))
    sentry.items.clear()
    tick(at("2027-03-14 07:00"))  # 02:30 does not happen: the slot is 03:00 EDT, 07:00 UTC
    assert [slot for slot, _ in outcomes("n")] == [at("2027-03-14 07:00")]
    assert [c["status"] for c in sentry.checkins] == ["in_progress", "ok"]
    assert sentry.checkins[0]["monitor_config"]["schedule"] == {"type": "crontab", "value": "30 2 * * *"}


def test_a_bad_catch_up_setting_is_a_system_check_error(settings):
    settings.CRONTABBER_SENTRY_CATCH_UP_CHECKINS = "all"
    [error] = notify.check_catch_up_setting()
    assert error.id == "crontabber.E024" and "must be 'one' or 'none', not 'all'" in error.msg


def test_the_monitor_of_a_schedule_that_changed_is_the_schedule_in_force_now(jobs, sentry, settings):
    settings.CRONTABBER_SENTRY_CRONS = True
    jobs([{"name": "h", "cmd": "record", "cron": "0 * * * *", "backfill": True, "timezone": "Pacific/Chatham"}])
    tick(at("2026-05-01 10:00"))
    jobs([{"name": "h", "cmd": "record", "cron": "30 * * * *", "backfill": True, "timezone": "Pacific/Chatham"}])
    sentry.items.clear()
    tick(at("2026-05-01 12:40"))  # 11:00 (late) and 12:00 of the old schedule, owed before the change
    configs = {c["monitor_config"]["schedule"]["value"] for c in sentry.checkins}
    assert configs == {"30 * * * *"} and {c["monitor_config"]["timezone"] for c in sentry.checkins} == {
        "Pacific/Chatham"
    }
    assert [c["status"] for c in sentry.checkins] == ["in_progress", "ok"]


@pytest.mark.parametrize(
    "entry, schedule, zone",
    [
        ({"cron": "*/5 * * * *"}, {"type": "crontab", "value": "*/5 * * * *"}, "UTC"),
        (
            {"cron": "@daily", "timezone": "America/New_York"},
            {"type": "crontab", "value": "0 0 * * *"},
            "America/New_York",
        ),
        (
            {"cron": "0 0 * * 6-6"},
            {"type": "crontab", "value": "0 0 * * 6"},
            "UTC",
        ),  # croniter reads 6-6 as every day
        ({"frequency": "5m"}, {"type": "interval", "value": 5, "unit": "minute"}, "UTC"),
        ({"frequency": "90m"}, {"type": "interval", "value": 90, "unit": "minute"}, "UTC"),
        ({"frequency": "2h"}, {"type": "interval", "value": 2, "unit": "hour"}, "UTC"),
        (
            {"frequency": "1d", "time": "03:30", "timezone": "Europe/Berlin"},
            {"type": "crontab", "value": "30 3 * * *"},
            "Europe/Berlin",
        ),
        (
            {"frequency": "1d"},
            {"type": "interval", "value": 1, "unit": "day"},
            "UTC",
        ),  # at the first run's time
        ({"frequency": "3d", "time": "04:00"}, {"type": "interval", "value": 3, "unit": "day"}, "UTC"),
    ],
)
def test_monitor_config_follows_the_registry_entry(jobs, entry, schedule, zone):
    jobs([{"name": "j", "cmd": "record", **entry}])
    (spec,) = load_jobs()
    assert notify.monitor_config(spec) == {"schedule": schedule, "timezone": zone, "checkin_margin": 10}


def test_monitor_config_of_an_operators_override_and_the_margin_setting(jobs, settings):
    settings.CRONTABBER_INTERVAL = 60
    jobs([{"name": "j", "cmd": "record", "frequency": "1h", "timeout": 3600.5}])
    (spec,) = load_jobs()
    assert notify.monitor_config(spec)["checkin_margin"] == 2 and notify.monitor_config(spec)["max_runtime"] == 61
    same_minute = effective_spec(spec, Job(schedule_override="13:15,07:15"))
    assert notify.monitor_config(same_minute)["schedule"] == {"type": "crontab", "value": "15 7,13 * * *"}
    assert (
        notify.monitor_config(effective_spec(spec, Job(schedule_override="13:00,18:30"))) is None
    )  # no crontab says just that


@pytest.mark.parametrize(
    "name, slug",
    [
        ("hourly-report", "hourly-report"),
        ("Hourly Report (EU)", "hourly-report-eu"),
        ("a.b/c_d", "a-b-c_d"),
        ("...", "job"),
    ],
)
def test_monitor_slug(name, slug):
    assert notify.monitor_slug(name) == slug


def test_a_long_name_keeps_distinct_slugs():
    a, b = notify.monitor_slug("x" * 60 + "a"), notify.monitor_slug("x" * 60 + "b")
    assert a != b and len(a) == len(b) == 50


# --- e-mail ------------------------------------------------------------------------------


@pytest.fixture
def mailto(settings):
    settings.CRONTABBER_NOTIFY_EMAILS = ["ops@example.com"]
    settings.EMAIL_SUBJECT_PREFIX = "[site] "
    return settings


def test_a_failure_series_mails_its_start_and_its_end_only(jobs, mailto):
    jobs([{"name": "sync", "cmd": "record", "frequency": "5m"}])
    control.FAILING.add("*")
    for minute in range(0, 60, 5):  # failing every 5 minutes (backing off) for an hour
        tick(at("2026-05-01 10:00") + timedelta(minutes=minute))
    failed = job("sync").error_count
    assert failed >= 3
    (first,) = mail.outbox
    assert first.to == ["ops@example.com"]
    assert first.subject == "[site] crontabber: sync failed (slot 2026-05-01 10:00Z)"
    assert "Slot:     2026-05-01T10:00:00+00:00" in first.body
    assert "Error:    CommandError: failing on purpose for *" in first.body
    assert "recorded" not in first.body and "Traceback (most recent call last)" in first.body
    control.FAILING.clear()
    tick(at("2026-05-01 11:30"))
    assert len(mail.outbox) == 2
    recovery = mail.outbox[1]
    assert recovery.subject == f"[site] crontabber: sync recovered after {failed} failed attempts"
    assert f"It succeeded after {failed} failed attempts since 2026-05-01T10:00:00+00:00." in recovery.body
    assert "The last error was: CommandError: failing on purpose for *" in recovery.body
    assert "recorded  *" in recovery.body  # its output
    tick(at("2026-05-01 11:35"))
    assert len(mail.outbox) == 2  # a success after a success: nothing to say


def test_a_skip_after_failures_is_a_recovery_too(jobs, mailto):
    jobs([{"name": "s", "cmd": "skipper", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    assert mail.outbox == []
    from crontabber.models import Job

    Job.objects.filter(name="s").update(error_count=2, next_run=at("2026-05-01 11:00"))
    tick(at("2026-05-01 11:00"))
    (recovery,) = mail.outbox
    assert recovery.subject == "[site] crontabber: s recovered after 2 failed attempts"
    assert "It skipped (no new rows) after 2 failed attempts" in recovery.body


def test_a_timeout_is_mailed_as_timed_out(jobs, mailto):
    jobs([{"name": "hung", "cmd": "work", "cmd_args": ["--seconds", "30"], "frequency": "1h", "timeout": 0.5}])
    with pytest.raises(CommandError, match="did not succeed"):  # a one-shot tick with a failure exits 1
        call_command("cronrun")
    (message,) = mail.outbox
    assert " hung timed out (slot " in message.subject and "working 30.0 s" in message.body


def test_notify_on_success_mails_a_success_with_output_only(jobs, mailto):
    jobs(
        [
            {"name": "talk", "cmd": "chatty", "frequency": "1h", "notify_on_success": True},
            {"name": "quiet", "cmd": "noop", "frequency": "1h", "notify_on_success": True},
            {"name": "unasked", "cmd": "chatty", "frequency": "1h"},
            {"name": "skip", "cmd": "skipper", "frequency": "1h", "notify_on_success": True},
        ]
    )
    tick(at("2026-05-01 10:00"))
    (message,) = mail.outbox
    assert message.subject == "[site] crontabber: talk succeeded (slot 2026-05-01 10:00Z)"
    assert "line 0\nline 1\nline 2" in message.body and "no newline at the end" in message.body


def test_the_default_recipients_are_the_admins(jobs, settings):
    del settings.CRONTABBER_NOTIFY_EMAILS
    settings.ADMINS = [("Alice", "alice@example.com"), ("Bob", "bob@example.com")]
    jobs([{"name": "bad", "cmd": "boom", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    (message,) = mail.outbox
    assert message.to == ["alice@example.com", "bob@example.com"] and "RuntimeError: boom" in message.body


def test_no_recipients_no_mail(jobs, settings):
    settings.CRONTABBER_NOTIFY_EMAILS = []
    settings.ADMINS = [("Alice", "alice@example.com")]
    jobs([{"name": "bad", "cmd": "boom", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))
    assert mail.outbox == []


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


def test_a_mail_that_cannot_be_sent_is_logged_and_the_runner_goes_on(jobs, mailto, caplog):
    mailto.EMAIL_BACKEND = "tests.test_notify.BrokenBackend"
    jobs(
        [
            {"name": "bad", "cmd": "boom", "frequency": "1h"},
            {"name": "next", "cmd": "record", "frequency": "1h"},
        ]
    )
    tick(at("2026-05-01 10:00"))
    assert outcomes("bad") == [(at("2026-05-01 10:00"), "failure")]
    assert outcomes("next") == [(at("2026-05-01 10:00"), "success")]
    assert "bad: could not mail" in caplog.text and "mail server down" in caplog.text
    assert job("bad").error_count == 1 and job("bad").claimed_by == ""


@pytest.mark.django_db(transaction=True)
def test_an_attempt_on_a_task_worker_closes_the_check_in_it_opened_from_another_tick(jobs, sentry, settings):
    pytest.importorskip("django_tasks_db")
    from tests.test_tasks import worker_runs_ready_tasks

    settings.CRONTABBER_SENTRY_CRONS = True
    jobs([{"name": "queued", "cmd": "record", "frequency": "1h", "backend": "db"}])
    tick(at("2026-05-01 10:00"))
    notify._open_checkins.clear()  # as if the attempt's end were read by another process
    worker_runs_ready_tasks()
    tick(at("2026-05-01 10:01"))
    started, ok = sentry.checkins
    assert (started["status"], ok["status"]) == ("in_progress", "ok")
    assert ok["check_in_id"] == started["check_in_id"]
