"""cronlist, cronreset and cronmarksuccess."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time

from crontabber.models import Job, Log
from tests.helpers import at, child_env, job, manage, tick
from tests.jobs import control

pytestmark = pytest.mark.django_db

REGISTRY = [
    {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True},
    {"name": "daily", "cmd": "record", "frequency": "1d", "time": "03:00", "timezone": "Europe/Berlin"},
    {"name": "bad", "cmd": "boom", "frequency": "1h"},
]


def run(*args, when=at("2026-05-01 12:00")):
    with freeze_time(when):
        call_command(*args)


def test_cronlist_table(registry, capsys):
    run("cronlist")
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "NAME",
        "SCHEDULE",
        "LAST",
        "RUN",
        "LAST",
        "SUCCESS",
        "LAST",
        "SKIPPED",
        "NEXT",
        "RUN",
        "LAG",
        "ERRORS",
        "RUNNING",
    ]
    hourly = next(line for line in out if line.startswith("hourly"))
    assert "cron 0 * * * * UTC" in hourly and "2026-05-01 11:00Z" in hourly and "2026-05-01 12:00Z" in hourly
    assert "bad: last error: RuntimeError: boom" in out


def test_cronlist_json_and_names_limit_the_list(registry, capsys):
    run("cronlist", "--format=json", "hourly", "bad")
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == ["hourly", "bad"]
    required = {
        "name",
        "cmd",
        "schedule",
        "enabled",
        "next_run",
        "last_run",
        "last_success",
        "first_run",
        "error_count",
        "last_error",
        "ongoing",
    }
    assert required <= set(entries[0])
    assert entries[0]["last_success"] == "2026-05-01T11:00:00+00:00"
    assert entries[0]["ongoing"] is None
    assert entries[1]["error_count"] == 2 and entries[1]["last_success"] is None


def test_cronlist_shows_a_running_job(registry, capsys):
    Job.objects.filter(name="daily").update(
        claimed_by="host:1:ab", claimed_at=at("2026-05-01 11:59"), claim_expires=at("2026-05-01 12:04")
    )
    run("cronlist", "--format=json", "daily")
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["ongoing"] == "2026-05-01T11:59:00+00:00" and entry["claimed_by"] == "host:1:ab"


def test_cronreset_forgets_state_so_a_backfill_job_starts_over(registry, capsys):
    run("cronreset", "hourly")
    assert "hourly: reset" in capsys.readouterr().out
    state = job("hourly")
    assert (state.first_run, state.last_success, state.next_run, state.error_count) == (None, None, None, 0)
    assert Log.objects.filter(job=state).count() == 2, "history is kept"
    control.CALLS.clear()
    tick(at("2026-05-01 15:30"))
    tick(at("2026-05-01 16:00"))
    assert [c["run_time"] for c in control.CALLS] == [at("2026-05-01 16:00")], "no backfill before the reset"


def test_cronreset_all(registry, capsys):
    run("cronreset", "--all")
    assert not Job.objects.exclude(next_run=None).exists()


def test_cronmarksuccess_records_a_success_now_so_the_gap_is_not_backfilled(registry, capsys):
    run("cronmarksuccess", "hourly", when=at("2026-05-02 09:30"))
    assert "hourly: marked succeeded at 2026-05-02T09:30:00+00:00; next run 2026-05-02T10:00:00+00:00" in (
        capsys.readouterr().out
    )
    control.CALLS.clear()
    tick(at("2026-05-02 10:00"))
    assert [c["run_time"] for c in control.CALLS if c["run_time"]] == [at("2026-05-02 10:00")]
    assert Log.objects.filter(job__name="hourly", output__contains="cronmarksuccess").count() == 1


def test_cronmarksuccess_at_a_given_time_clears_errors(registry, capsys):
    run("cronmarksuccess", "bad", "--time", "2026-05-01T13:00:00+02:00")
    state = job("bad")
    assert state.last_success == at("2026-05-01 11:00") and state.error_count == 0 and state.last_error == ""
    run("cronmarksuccess", "--all")
    assert job("daily").last_success == at("2026-05-01 12:00")


@pytest.mark.parametrize("command", ["cronlist", "cronreset", "cronmarksuccess", "cronunlock"])
def test_an_unknown_name_changes_nothing(registry, command):
    before = list(Job.objects.order_by("name").values())
    logs = Log.objects.count()
    with pytest.raises(CommandError, match="unknown job 'nope'"):
        run(command, "hourly", "nope")
    assert list(Job.objects.order_by("name").values()) == before and Log.objects.count() == logs


@pytest.mark.parametrize(
    "args, message",
    [
        (["cronmarksuccess", "hourly", "--time", "yesterday"], "not an ISO 8601 time"),
        (["cronmarksuccess", "hourly", "--time", "2030-01-01T00:00:00+00:00"], "in the future"),
        (["cronreset"], "name at least one job"),
        (["cronreset", "hourly", "--all"], "not both"),
    ],
)
def test_bad_arguments_are_one_line_errors(registry, args, message):
    before = list(Job.objects.order_by("name").values())
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert list(Job.objects.order_by("name").values()) == before


def test_a_running_job_is_not_reset_or_marked(registry):
    Job.objects.filter(name="hourly").update(
        claimed_by="host:1:ab", claimed_at=at("2026-05-01 11:59"), claim_expires=at("2026-05-01 12:04")
    )
    before = list(Job.objects.order_by("name").values())
    for command in ("cronreset", "cronmarksuccess"):
        with pytest.raises(CommandError, match="running"):
            run(command, "daily", "hourly")
    assert list(Job.objects.order_by("name").values()) == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["cronrun --job", "cronlist", "cronreset", "cronmarksuccess"])
def test_unknown_name_exits_1_with_one_line_and_no_traceback(command):
    result = manage(*command.split(), "nope", env=child_env(json.dumps(REGISTRY)))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: unknown job 'nope'"
        + ("; nothing was changed" if command in ("cronreset", "cronmarksuccess") else "")
    ]
    assert not Job.objects.exists()


def test_cronunlock_releases_an_expired_claim_and_says_who_held_it(registry, capsys):
    Job.objects.filter(name="hourly").update(
        claimed_by="deadhost:7:ab", claimed_at=at("2026-05-01 11:30"), claim_expires=at("2026-05-01 11:35")
    )
    Log.objects.create(
        job=job("hourly"),
        slot=at("2026-05-01 11:00"),
        started_at=at("2026-05-01 11:30"),
        duration=0,
        outcome="running",
    )
    run("cronunlock", "hourly", "daily")
    out = capsys.readouterr().out
    assert "hourly: released the claim of deadhost:7:ab, held since 2026-05-01 11:30:00Z" in out
    assert "daily: not claimed" in out
    assert job("hourly").claimed_by == ""
    assert not Log.objects.filter(outcome="running").exists()


def test_cronunlock_refuses_a_live_claim_without_force(registry, capsys):
    Job.objects.filter(name="hourly").update(
        claimed_by="livehost:7:ab", claimed_at=at("2026-05-01 11:59"), claim_expires=at("2026-05-01 12:04")
    )
    with pytest.raises(CommandError, match="claim not expired"):
        run("cronunlock", "hourly")
    assert job("hourly").claimed_by == "livehost:7:ab"
    run("cronunlock", "--force", "hourly")
    assert job("hourly").claimed_by == ""
