"""cronrerun and the admin's re-run: a range of past slots runs again, oldest first, as new
attempts, without moving the job's schedule back; refusals change nothing."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from freezegun import freeze_time

from crontabber.engine.runner import Runner
from crontabber.models import Control, Job, Log
from tests.helpers import at, child_env, job, manage, tick
from tests.jobs import control

pytestmark = pytest.mark.django_db

REGISTRY = [
    {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True},
    {"name": "child", "cmd": "record", "cron": "0 * * * *", "backfill": True, "depends_on": ["hourly"]},
    {"name": "plain", "cmd": "record", "frequency": "1h"},
]
NOW = at("2026-05-01 12:30")


@pytest.fixture
def ran(jobs):
    """hourly and child ran 10:00, 11:00 and 12:00; the regular state is next slot 13:00."""
    jobs(REGISTRY)
    for hour in (10, 11, 12):
        tick(at(f"2026-05-01 {hour}:00"))
    control.CALLS.clear()


def rerun(*args, when=NOW):
    with freeze_time(when):
        call_command("cronrerun", *args)


def attempts(name, slot):
    return sorted(Log.objects.filter(job__name=name, slot=slot).values_list("attempt", "outcome"))


def test_the_range_runs_again_oldest_first_as_new_attempts(ran, capsys):
    before = job("hourly")
    rerun("hourly", "--from", "2026-05-01T10:00:00+00:00", "--to", "2026-05-01T11:00Z")
    assert [c["run_time"] for c in control.CALLS] == [at("2026-05-01 10:00"), at("2026-05-01 11:00")]
    assert attempts("hourly", at("2026-05-01 10:00")) == [(1, "success"), (2, "success")]
    after = job("hourly")
    assert (after.next_slot, after.next_run, after.last_success) == (
        before.next_slot,
        before.next_run,
        before.last_success,
    ), "the regular schedule is not moved back"
    out = capsys.readouterr().out
    assert "hourly 2026-05-01T10:00:00+00:00: success" in out and "[1/2]" in out and "[2/2]" in out
    assert after.claimed_by == "", "the claim is released"


def test_a_later_success_moves_last_success_forward_but_not_the_schedule(ran, capsys):
    control.FAILING.add("2026-05-01T13:00:00+00:00")
    tick(at("2026-05-01 13:00"))
    failing = job("hourly")
    assert failing.last_success == at("2026-05-01 12:00") and failing.error_count == 1
    control.FAILING.clear()
    rerun("hourly", "--from", "2026-05-01T13:00Z", "--to", "2026-05-01T13:00Z", when=at("2026-05-01 13:10"))
    state = job("hourly")
    assert state.last_success == at("2026-05-01 13:00")
    assert (state.next_slot, state.next_run, state.error_count) == (
        failing.next_slot,
        failing.next_run,
        failing.error_count,
    )
    assert attempts("hourly", at("2026-05-01 13:00")) == [(1, "failure"), (2, "success")]


def test_a_failure_stops_the_rerun_with_a_non_zero_exit(ran):
    control.FAILING.add("2026-05-01T11:00:00+00:00")
    with pytest.raises(CommandError, match="the re-run stopped: failure for 2026-05-01T11:00:00"):
        rerun("hourly", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T12:00Z")
    assert [c["run_time"] for c in control.CALLS] == [at("2026-05-01 10:00"), at("2026-05-01 11:00")]
    assert job("hourly").error_count == 0, "a re-run's failure is not the schedule's"


def test_dry_run_lists_the_slots_and_runs_nothing(ran, capsys):
    logs = Log.objects.count()
    rerun("hourly", "--from", "2026-05-01T10:30Z", "--to", "2026-05-01T12:00Z", "--dry-run")
    assert capsys.readouterr().out.splitlines() == [
        "hourly: 2 slots in the range: 0 missing (never attempted), 0 failed, 2 done, 0 paused",
        "would re-run hourly for 2026-05-01T11:00:00+00:00",
        "would re-run hourly for 2026-05-01T12:00:00+00:00",
    ]
    assert control.CALLS == [] and Log.objects.count() == logs


def test_more_than_a_thousand_slots_need_yes(ran, capsys):
    with pytest.raises(CommandError, match="more than 1,000 slots to re-run; add --yes"):
        rerun("hourly", "--from", "2026-03-01T00:00Z", "--to", "2026-05-01T12:00Z", "--dry-run")
    rerun("hourly", "--from", "2026-03-01T00:00Z", "--to", "2026-05-01T12:00Z", "--dry-run", "--yes")
    assert len(capsys.readouterr().out.splitlines()) == 61 * 24 + 13 + 2  # and the preview, said by both


@pytest.mark.parametrize(
    "start, end, message",
    [
        ("2026-05-01T12:00Z", "2026-05-01T10:00Z", "the range is reversed"),
        ("2026-05-01T10:00Z", "2026-05-01T13:00Z", "is in the future"),
        ("yesterday", "2026-05-01T10:00Z", "not an ISO 8601 time"),
        ("0001-01-01T00:00+05:00", "2026-05-01T10:00Z", "out of the range"),
        ("2026-05-01T10:10Z", "2026-05-01T10:20Z", "no slot of its schedule"),
    ],
)
def test_bad_ranges_are_one_line_and_change_nothing(ran, start, end, message):
    logs = Log.objects.count()
    with pytest.raises(CommandError, match=message) as refused:
        rerun("hourly", "--from", start, "--to", end)
    assert "\n" not in str(refused.value) and control.CALLS == [] and Log.objects.count() == logs


def test_refused_while_another_runner_holds_the_job(ran):
    Job.objects.filter(name="hourly").update(
        claimed_by="h:1:x", claimed_at=at("2026-05-01 12:29"), claim_expires=at("2026-05-01 12:34")
    )
    with pytest.raises(CommandError, match=r"hourly: it is running \(claimed by h:1:x\)"):
        rerun("hourly", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T11:00Z")
    assert control.CALLS == [] and job("hourly").claimed_by == "h:1:x"


def test_refused_while_all_jobs_are_held(ran):
    Control.hold(by="ops", now=NOW)
    with pytest.raises(CommandError, match="all jobs are held by ops"):
        rerun("hourly", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T11:00Z")
    assert control.CALLS == []


def test_refused_for_unknown_and_never_run_jobs(ran, jobs):
    with pytest.raises(CommandError, match="unknown job 'nope'"):
        rerun("nope", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T11:00Z")
    jobs([*REGISTRY, {"name": "new", "cmd": "record", "frequency": "1h", "backfill": True}])
    with pytest.raises(CommandError, match="new: it has not run yet"):
        rerun("new", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T11:00Z")


def test_a_slot_whose_dependency_has_not_succeeded_stops_the_rerun_there(ran, capsys):
    Job.objects.filter(name="hourly").update(last_success=at("2026-05-01 10:00"))
    with pytest.raises(CommandError, match="waiting for hourly to succeed for 2026-05-01T11:00:00"):
        rerun("child", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T12:00Z")
    assert [c["run_time"] for c in control.CALLS] == [at("2026-05-01 10:00")]
    assert "child 2026-05-01T11:00:00+00:00: waiting for hourly" in capsys.readouterr().out


def test_a_job_that_is_not_told_its_slot_runs_once_for_the_latest(ran, capsys):
    rerun("plain", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T12:00Z")
    assert len(control.CALLS) == 1 and control.CALLS[0]["run_time"] is None
    assert "not a backfill job" in capsys.readouterr().out


# --- the admin ---------------------------------------------------------------------------


@pytest.fixture
def operator(ran):
    client = Client()
    client.force_login(User.objects.create_superuser("op", password="pw"))
    return client


def act(client, **data):
    url = reverse("admin:crontabber_job_changelist")
    return client.post(url, {"action": "rerun", "_selected_action": [job("hourly").pk], **data}, follow=True)


def confirmed(client, **data):
    """The form submitted, its preview read, and submitted again as previewed: queued."""
    preview = act(client, apply="yes", **data)
    return act(client, apply="yes", previewed=preview.context["form"]["previewed"].value(), **data)


def said(response):
    return " | ".join(str(message) for message in response.context["messages"])


def test_the_admin_queues_a_range_the_next_tick_runs_audited(operator, capsys):
    page = act(operator)
    assert all(
        f'name="{field}"' in page.content.decode() for field in ("start", "end", "failed_and_missing", "newest_first")
    )
    with freeze_time(NOW):
        response = confirmed(operator, start="2026-05-01T10:00Z", end="2026-05-01T11:00Z")
    assert "hourly: 2 slots from 2026-05-01 10:00 UTC to 2026-05-01 11:00 UTC" in said(response)
    assert (job("hourly").rerun_from, job("hourly").rerun_to) == (at("2026-05-01 10:00"), at("2026-05-01 11:00"))
    (entry,) = LogEntry.objects.all()
    assert entry.user.username == "op"
    assert entry.get_change_message() == (
        "Re-run queued from 2026-05-01T10:00:00+00:00 to 2026-05-01T11:00:00+00:00 (2 slots)"
    )
    assert control.CALLS == [], "nothing runs inside the request"
    with freeze_time(NOW):
        Runner().tick()
    assert [c["run_time"] for c in control.CALLS] == [at("2026-05-01 10:00"), at("2026-05-01 11:00")]
    assert attempts("hourly", at("2026-05-01 11:00")) == [(1, "success"), (2, "success")]
    assert (job("hourly").rerun_from, job("hourly").rerun_to) == (None, None), "done once"


def test_the_admin_preview_and_bad_ranges_queue_nothing(operator):
    with freeze_time(NOW):
        dry = act(operator, apply="yes", start="2026-05-01T10:00Z", end="2026-05-01T11:00Z")
        reversed_ = act(operator, apply="yes", start="2026-05-01T11:00Z", end="2026-05-01T10:00Z")
        future = act(operator, apply="yes", start="2026-05-01T11:00Z", end="2026-05-02T10:00Z")
    assert dry.context["preview"] == [
        "hourly: 2 slots in the range: 0 missing (never attempted), 0 failed, 2 done, 0 paused; 2 slots would re-run"
    ]
    assert "the range is reversed" in reversed_.content.decode()
    assert "is in the future" in future.content.decode()
    assert job("hourly").rerun_from is None and not LogEntry.objects.exists()


def test_a_queued_rerun_waiting_for_a_dependency_stays_queued_from_that_slot(operator):
    Job.objects.filter(name="hourly").update(last_success=at("2026-05-01 10:00"))
    Job.objects.filter(name="child").update(rerun_from=at("2026-05-01 10:00"), rerun_to=at("2026-05-01 12:00"))
    with freeze_time(NOW):
        Runner().tick()
    assert [c["run_time"] for c in control.CALLS] == [at("2026-05-01 10:00")]
    assert (job("child").rerun_from, job("child").rerun_to) == (at("2026-05-01 11:00"), at("2026-05-01 12:00"))


@pytest.mark.django_db(transaction=True)
def test_a_reversed_range_from_the_shell_is_one_line_exit_status_1_and_no_traceback():
    args = ("cronrerun", "hourly", "--from", "2026-05-01T12:00Z", "--to", "2026-05-01T10:00Z")
    result = manage(*args, env=child_env(json.dumps(REGISTRY)))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "CommandError: hourly: the range is reversed: 2026-05-01T12:00:00+00:00 is after "
        "2026-05-01T10:00:00+00:00; nothing was re-run"
    ]
