"""Folding a backlog (`fold`): the due slots of a tick run as one attempt told its window,
recorded as one Log row that covers them all; a failed window is retried whole."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from crontabber.admin.display import attach_cells
from crontabber.engine.runner import Runner
from crontabber.models import Job, Log
from crontabber.registry import check_registry, load_jobs
from crontabber.schedules import format_instant
from tests.helpers import at, child_env, job, manage, tick
from tests.jobs.models import Execution

QUARTER = timedelta(minutes=15)
FOLDED = {"name": "rollup", "cmd": "window", "frequency": "15m", "backfill": True, "fold": True}


def windows():
    """What the job was told, attempt by attempt: (since, run time)."""
    return list(Execution.objects.order_by("id").values_list("label", "slot"))


def attempts(name="rollup"):
    return list(Log.objects.filter(job__name=name).order_by("started_at", "id"))


@pytest.mark.django_db
def test_a_day_of_missed_slots_runs_as_one_attempt_told_its_window(jobs):
    jobs([FOLDED])
    start = at("2026-05-01 00:00")
    tick(start)  # the first slot, alone: a window of one
    out = io.StringIO()
    with_output = start + 96 * QUARTER  # a day later: 96 slots due
    with freeze_time(with_output):
        Runner(out=out).tick()
    first, day = attempts()
    assert (first.since, first.slot, first.covers) == (start, start, 1)
    assert (day.since, day.slot, day.covers, day.outcome) == (start + QUARTER, with_output, 96, "success")
    assert windows() == [
        (format_instant(start), format_instant(start)),
        (format_instant(start + QUARTER), format_instant(with_output)),
    ]
    assert f"rollup {format_instant(start + QUARTER)} to {format_instant(with_output)} (96 slots, folded): success" in (
        out.getvalue()
    )
    state = job("rollup")
    assert state.last_success == with_output and state.next_slot == with_output + QUARTER


@pytest.mark.django_db
def test_a_failed_window_is_retried_whole_with_the_slots_due_since(jobs):
    jobs([{**FOLDED, "cmd_args": ["--fail"]}])
    start = at("2026-05-01 00:00")
    tick(start)
    tick(start + 4 * QUARTER)
    jobs([FOLDED])  # fixed
    tick(start + 8 * QUARTER)  # after the back-off: the same oldest slot, a longer window
    told = windows()
    assert told[1:] == [
        (format_instant(start), format_instant(start + 4 * QUARTER)),
        (format_instant(start), format_instant(start + 8 * QUARTER)),
    ]
    assert [(log.outcome, log.covers, log.attempt) for log in attempts()] == [
        ("failure", 1, 1),
        ("failure", 5, 2),
        ("success", 9, 3),
    ], "each a retry of the window from the same oldest slot"
    assert job("rollup").error_count == 0 and job("rollup").last_success == start + 8 * QUARTER


@pytest.mark.django_db
def test_max_backfill_caps_the_window_and_the_rest_folds_on_the_next_tick(jobs):
    jobs([{**FOLDED, "max_backfill": 4}])
    start = at("2026-05-01 00:00")
    tick(start)
    tick(start + 10 * QUARTER)
    tick(start + 10 * QUARTER + timedelta(seconds=30))
    assert [(log.since, log.slot, log.covers) for log in attempts()][1:] == [
        (start + QUARTER, start + 4 * QUARTER, 4),
        (start + 5 * QUARTER, start + 8 * QUARTER, 4),
    ]


@pytest.mark.django_db
def test_a_task_is_told_run_time_and_since(jobs):
    jobs([{"name": "rollup", "task": "tests.jobs.tasks.window", "frequency": "15m", "backfill": True, "fold": True}])
    start = at("2026-05-01 00:00")
    tick(start)
    tick(start + 3 * QUARTER)
    (_, log) = attempts()
    assert (log.covers, json.loads(log.output)) == (
        3,
        {"since": format_instant(start + QUARTER), "run_time": format_instant(start + 3 * QUARTER)},
    )


@pytest.mark.parametrize(
    "entry, key, message",
    [
        ({"cmd": "window", "fold": True}, "fold", "only with 'backfill'"),
        ({"cmd": "noop", "backfill": True, "fold": True}, "fold", "does not accept --since"),
        ({"task": "tests.jobs.tasks.rollup", "backfill": True, "fold": True}, "fold", "keyword argument since"),
    ],
)
def test_the_system_check_refuses_fold_without_backfill_or_since(settings, entry, key, message):
    settings.CRONTABBER_JOBS = [entry]
    errors = [str(error) for error in check_registry()]
    assert len(errors) == 1 and f"key {key!r}" in errors[0] and message in errors[0]


@pytest.mark.django_db
def test_a_rerun_of_a_range_of_a_folded_job_is_one_attempt_for_the_range(jobs, capsys):
    jobs([FOLDED])
    start = at("2026-05-01 00:00")
    tick(start)
    tick(start + 8 * QUARTER)
    first, last = start + 2 * QUARTER, start + 6 * QUARTER
    call_command("cronrerun", "rollup", "--from", first.isoformat(), "--to", last.isoformat())
    out = capsys.readouterr().out
    assert "5 slots in the range: 0 missing (never attempted), 0 failed, 5 done, 0 paused" in out
    rerun = Log.objects.get(job__name="rollup", rerun=True)
    assert (rerun.since, rerun.slot, rerun.covers, rerun.outcome) == (first, last, 5, "success")
    assert windows()[-1] == (format_instant(first), format_instant(last))


@pytest.mark.django_db
def test_the_strip_shows_each_covered_slot_done_by_the_one_attempt(jobs):
    jobs([FOLDED])
    start = at("2026-05-01 00:00")
    tick(start)
    tick(start + 6 * QUARTER)
    row = job("rollup")
    (row._spec,) = load_jobs()
    attach_cells([row], start + 6 * QUARTER, 10)
    folded = attempts()[-1]
    assert [(cell.slot, cell.state, cell.attempt.id) for cell in row._cells] == [
        (start, "success", attempts()[0].id)
    ] + [(start + n * QUARTER, "success", folded.id) for n in range(1, 7)]


@pytest.mark.django_db(transaction=True)
def test_cronrun_and_cronlist_as_typed_fold_a_backlog(jobs):
    entry = {**FOLDED, "frequency": "1m"}
    jobs([entry])
    (spec,) = load_jobs()
    Job.objects.create(name="rollup", **Job.fresh_state(spec.schedule, timezone.now() - timedelta(minutes=5)))
    env = child_env(json.dumps([entry]))
    ran = manage("cronrun", env=env)
    assert ran.returncode == 0, ran.stderr
    (log,) = attempts()
    assert log.covers >= 6 and log.outcome == "success"
    assert (
        f"rollup {format_instant(log.since)} to {format_instant(log.slot)} ({log.covers} slots, folded): success"
        in (ran.stdout)
    )
    assert "(folded)" in manage("cronlist", env=env).stdout.splitlines()[1]
    listed = json.loads(manage("cronlist", "--format=json", env=env).stdout)[0]
    assert listed["fold"] is True and listed["backfill"] is True


@pytest.mark.django_db
def test_a_dry_run_says_the_window_it_would_fold(jobs, capsys):
    jobs([FOLDED])
    start = at("2026-05-01 00:00")
    tick(start)
    with freeze_time(start + 4 * QUARTER):
        call_command("cronrun", "--dry-run")
    assert capsys.readouterr().out.splitlines()[0] == (
        f"would run rollup for {format_instant(start + QUARTER)} to {format_instant(start + 4 * QUARTER)} "
        "(4 slots, folded)"
    )
    assert len(attempts()) == 1, "nothing ran"


@pytest.mark.django_db
def test_the_log_pages_show_a_folded_attempts_window(jobs, admin_client):
    jobs([FOLDED])
    start = at("2026-05-01 00:00")
    tick(start)
    tick(start + 3 * QUARTER)
    page = admin_client.get(reverse("admin:crontabber_log_changelist")).content.decode()
    assert "2026-05-01 00:15 UTC" in page and "2026-05-01 00:45 UTC" in page and "(3 slots)" in page
