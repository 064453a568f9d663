"""A re-run previewed: cronrerun and the admin first say how many slots of the range are
missing, failed, done or paused, and offer the failed and missing slots only, newest first."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from freezegun import freeze_time

from crontabber.engine.runner import Runner
from crontabber.models import Log
from crontabber.schedules import format_instant
from tests.helpers import at, child_env, job, manage, tick
from tests.jobs import control
from tests.jobs.models import Execution

HOURLY = {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True}
NOW = at("2026-05-01 16:30")
SIX = [at(f"2026-05-01 {hour}:00") for hour in range(10, 16)]


def ran_six_hours(jobs, entry):
    """10:00 to 15:00 ran; then 12:00 is as if never attempted and 14:00 failed."""
    jobs([entry])
    for slot in SIX:
        tick(slot)
    Log.objects.filter(slot=SIX[2]).delete()
    Log.objects.filter(slot=SIX[4]).update(outcome="failure")
    control.CALLS.clear()
    Execution.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_cronrerun_as_typed_says_the_preview_then_runs_failed_and_missing_newest_first(jobs):
    entry = {**HOURLY, "cmd": "work"}
    ran_six_hours(jobs, entry)
    args = ("cronrerun", "hourly", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T15:00Z")
    result = manage(*args, "--failed-and-missing", "--newest-first", env=child_env(json.dumps([entry])))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "hourly: 6 slots in the range: 1 missing (never attempted), 1 failed, 4 done, 0 paused"
    )
    told = list(Execution.objects.order_by("id").values_list("slot", flat=True))
    assert told == [format_instant(SIX[4]), format_instant(SIX[2])], "only those two, the newest first"


@pytest.mark.django_db
def test_paused_slots_are_counted_and_not_rerun_and_missed_ones_count_as_missing(jobs, capsys):
    ran_six_hours(jobs, HOURLY)
    # The outcomes of the deadline work (issue 24), compared by value.
    Log.objects.filter(slot=SIX[0]).update(outcome="paused")
    Log.objects.filter(slot=SIX[1]).update(outcome="missed")
    with freeze_time(NOW):
        call_command("cronrerun", "hourly", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T15:00Z",
                     "--failed-and-missing")  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0] == (
        "hourly: 6 slots in the range: 2 missing (never attempted), 1 failed, 2 done, 1 paused"
    )
    assert [call["run_time"] for call in control.CALLS] == [SIX[1], SIX[2], SIX[4]]


@pytest.mark.django_db
def test_nothing_failed_or_missing_is_refused_in_one_line(jobs):
    jobs([HOURLY])
    for slot in SIX:
        tick(slot)
    with freeze_time(NOW), pytest.raises(Exception, match="no failed or missing slot from"):
        call_command("cronrerun", "hourly", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T15:00Z",
                     "--failed-and-missing")  # fmt: skip


@pytest.mark.django_db
def test_a_folded_job_reruns_its_failed_and_missing_slots_as_one_window(jobs):
    entry = {**HOURLY, "cmd": "window", "fold": True}
    jobs([entry])
    tick(SIX[0])
    tick(SIX[-1])  # one folded attempt for 11:00 to 15:00
    Log.objects.create(job=job("hourly"), slot=SIX[3], started_at=SIX[-1], duration=0, outcome="failure")
    Execution.objects.all().delete()
    with freeze_time(NOW):
        call_command("cronrerun", "hourly", "--from", "2026-05-01T10:00Z", "--to", "2026-05-01T15:00Z",
                     "--failed-and-missing")  # fmt: skip
    assert list(Execution.objects.values_list("label", "slot")) == [(format_instant(SIX[3]), format_instant(SIX[3]))]


@pytest.fixture
def operator():
    client = Client()
    client.force_login(User.objects.create_superuser("op", password="pw"))
    return client


def act(client, **data):
    url = reverse("admin:crontabber_job_changelist")
    return client.post(url, {"action": "rerun", "_selected_action": [job("hourly").pk], **data}, follow=True)


@pytest.mark.django_db
def test_the_admin_previews_then_queues_failed_and_missing_newest_first(jobs, operator):
    ran_six_hours(jobs, HOURLY)
    form = dict(apply="yes", start="2026-05-01T10:00Z", end="2026-05-01T15:00Z")
    form.update(failed_and_missing="on", newest_first="on")
    with freeze_time(NOW):
        preview = act(operator, **form)
        assert preview.context["preview"] == [
            "hourly: 6 slots in the range: 1 missing (never attempted), 1 failed, 4 done, 0 paused; "
            "2 slots would re-run"
        ]
        assert job("hourly").rerun_from is None, "a preview queues nothing"
        queued = act(operator, previewed=preview.context["form"]["previewed"].value(), **form)
    messages = " | ".join(str(message) for message in queued.context["messages"])
    assert "hourly: 2 slots from 2026-05-01 10:00 UTC to 2026-05-01 15:00 UTC re-run on the next tick" in messages
    assert LogEntry.objects.get().get_change_message().endswith("(2 slots, failed and missing only, newest first)")
    with freeze_time(NOW):
        Runner().tick()
    assert [call["run_time"] for call in control.CALLS] == [SIX[4], SIX[2], at("2026-05-01 16:00")], "then its own"
    after = job("hourly")
    assert (after.rerun_from, after.rerun_failed_and_missing, after.rerun_newest_first) == (None, False, False)


@pytest.mark.django_db
def test_a_changed_range_is_previewed_again_before_it_is_queued(jobs, operator):
    ran_six_hours(jobs, HOURLY)
    with freeze_time(NOW):
        preview = act(operator, apply="yes", start="2026-05-01T10:00Z", end="2026-05-01T15:00Z")
        previewed = preview.context["form"]["previewed"].value()
        again = act(operator, apply="yes", start="2026-05-01T11:00Z", end="2026-05-01T15:00Z", previewed=previewed)
    assert again.context["preview"][0].startswith("hourly: 5 slots in the range")
    assert job("hourly").rerun_from is None
