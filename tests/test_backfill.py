"""A backfill job far behind catches up at the speed of a batch: its quick slots are opened
and recorded a batch at a time, a crash repeats at most the slots not yet recorded and
records none as run that did not run, and the tick keeps counts, not every attempt."""

import gc
import logging
import signal
import time
import tracemalloc
from collections import Counter
from datetime import timedelta
from itertools import takewhile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from freezegun import freeze_time

from crontabber import signals
from crontabber.engine.claims import MAX_BATCH, Claimed
from crontabber.engine.ledger import Ledger
from crontabber.engine.plan import Upcoming
from crontabber.engine.runner import Runner
from crontabber.models import Job, Log
from crontabber.outcomes import Attempt, Outcome
from crontabber.registry import load_jobs
from crontabber.schedules import build_schedule, format_instant
from tests.helpers import at, job, outcomes, start_runner, tick, wait_for
from tests.jobs import control
from tests.jobs.models import Execution

HOURLY = {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True}


@pytest.fixture
def quiet(caplog):
    """No log records kept of each attempt: what is measured is the runner's own."""
    caplog.set_level(logging.WARNING, logger="crontabber")


def hours(first, last):
    """Every hour from ``first`` to ``last``, both included."""
    count = int((last - first) / timedelta(hours=1)) + 1
    return [first + timedelta(hours=n) for n in range(count)]


def behind(name, first_slot):
    """Set the job's row back: its next slot is ``first_slot``."""
    Job.objects.filter(name=name).update(
        next_slot=first_slot, next_run=first_slot, last_success=first_slot - timedelta(hours=1)
    )


@pytest.mark.django_db
def test_a_year_behind_runs_every_slot_oldest_first_in_one_tick_a_batch_at_a_time(jobs, quiet):
    jobs([HOURLY])
    tick(at("2025-05-01 10:00"))
    control.CALLS.clear()
    now = at("2026-05-01 10:00")
    with freeze_time(now), CaptureQueriesContext(connection) as queries:
        Runner().tick()
    slots = hours(at("2025-05-01 11:00"), now)
    assert len(slots) == 365 * 24
    assert [call["run_time"] for call in control.CALLS] == slots, "each slot once, oldest first, told its slot"
    assert Log.objects.filter(job__name="hourly", outcome="success", slot__in=slots[::100]).count() == len(slots[::100])
    assert Log.objects.filter(job__name="hourly", outcome="success").count() == len(slots)  # the older purged
    assert job("hourly").next_slot == at("2026-05-01 11:00") and job("hourly").last_success == now
    # Rows opened and outcomes written a batch at a time (batches are sized by time:
    # smaller on a slow machine); row by row would take two statements a slot.
    assert len(queries) < len(slots) / 4, len(queries)


def test_walking_a_years_backlog_keeps_none_of_its_days_for_later():
    # The days' slots kept for the jobs of a tick are bounded in days, not in slots: a
    # year of a backlog's days (or of every minute's) must not fill them.
    from crontabber.schedules.cron import _slots_of_day

    schedule = build_schedule(cron="*/5 * * * *")
    _slots_of_day.cache_clear()
    walked = list(takewhile(lambda slot: slot <= at("2026-05-01 00:00"), schedule.slots_after(at("2025-05-01 00:00"))))
    assert len(walked) == 365 * 288 and walked[-1] == at("2026-05-01 00:00")
    assert _slots_of_day.cache_info().currsize == 0


@pytest.mark.django_db
def test_a_failure_inside_a_batch_is_recorded_with_its_error_and_the_job_stops_there(jobs):
    jobs([HOURLY])
    tick(at("2026-04-28 09:00"))
    slots = hours(at("2026-04-28 10:00"), at("2026-05-01 10:00"))
    control.FAILING.add(slots[40].isoformat())
    report = tick(at("2026-05-01 10:00"))
    logs = Log.objects.filter(slot__gte=slots[0]).order_by("slot")
    assert [(log.slot, log.outcome) for log in logs] == [(slot, "success") for slot in slots[:40]] + [
        (slots[40], "failure")
    ], "nothing after the failed slot ran or was left opened"
    failed = logs.get(slot=slots[40])
    assert (
        failed.error_type == "CommandError" and f"failing on purpose for {slots[40].isoformat()}" in failed.error_value
    )
    state = job("hourly")
    assert (state.next_slot, state.last_success, state.error_count) == (slots[40], slots[39], 1)
    assert report.attempts == {"hourly": {"success": 40, "failure": 1}}
    assert [(r.job, r.slot, r.attempt.outcome) for r in report.failed] == [("hourly", slots[40], "failure")]
    control.FAILING.clear()
    tick(at("2026-05-01 10:30"))  # past the back-off: resumes at the failed slot
    assert [call["run_time"] for call in control.CALLS][-len(slots) + 40 :] == slots[40:]
    assert not Log.objects.filter(outcome="running").exists()


@pytest.mark.django_db
def test_quick_outcomes_wait_for_their_batch_and_a_slow_slot_writes_it_at_once(jobs, receivers):
    jobs([HOURLY])
    tick(at("2026-04-30 09:00"))
    slots = hours(at("2026-04-30 10:00"), at("2026-05-01 10:00"))
    control.SLOW[slots[12].isoformat()] = 0.15  # longer than an attempt that counts as quick
    seen = {}  # slot -> successes on record when it started

    def look(sender, log, **kwargs):
        seen[log.slot] = Log.objects.filter(outcome="success", slot__in=slots).count()

    receivers.connect(signals.attempt_started, look)
    tick(at("2026-05-01 10:00"))
    assert seen[slots[13]] == 13, "the slow slot's outcome, and the quick ones before it, written before the next"
    assert seen[slots[12]] < 12, "quick outcomes wait to be written with their batch"
    assert outcomes("hourly")[-len(slots) :] == [(slot, "success") for slot in slots]


@pytest.mark.django_db
def test_an_attempt_recorded_while_the_backlog_still_starts_at_its_slot_moves_the_job_past_it(jobs):
    # As a task backend's attempt, queued on one tick and read back on the next (executors.TaskBackend):
    # the backlog's next slot is then the attempt's own, not the one after it.
    jobs([HOURLY])
    tick(at("2026-05-01 09:00"))
    Job.objects.filter(name="hourly").update(claimed_by="me")
    state, (spec,) = job("hourly"), load_jobs()
    book = Ledger("me", "host", 1)
    claimed = Claimed(spec, state, slots=Upcoming(hours(at("2026-05-01 10:00"), at("2026-05-01 12:00"))))
    (log,) = Log.opened(state, [at("2026-05-01 10:00")], at("2026-05-01 12:00"), "host", 1)
    log.save()
    book.record(claimed, log, Attempt(Outcome.SUCCESS))
    book.flush()
    assert job("hourly").next_slot == at("2026-05-01 11:00")


@pytest.mark.django_db
def test_a_stop_between_slots_leaves_no_row_of_the_slots_it_never_started(jobs, receivers):
    jobs([HOURLY])
    tick(at("2026-04-28 09:00"))
    slots = hours(at("2026-04-28 10:00"), at("2026-05-01 10:00"))
    runner, opened = Runner(), []

    def stop_at_the_tenth(sender, log, **kwargs):
        if log.slot == slots[9]:
            opened.extend(Log.objects.filter(outcome="running").values_list("slot", flat=True))
            runner.request_stop("test stop", 60)

    receivers.connect(signals.attempt_started, stop_at_the_tenth)
    with freeze_time(at("2026-05-01 10:00")):
        runner.tick()
    assert len(opened) > 1, "rows of later slots were opened with the tenth's"
    assert outcomes("hourly")[-10:] == [(slot, "success") for slot in slots[:10]]
    assert not Log.objects.filter(slot__gt=slots[9]).exists()
    assert job("hourly").next_slot == slots[10] and job("hourly").claimed_by == ""


@pytest.mark.django_db
def test_depends_on_and_max_backfill_still_hold_over_a_long_backlog(jobs):
    jobs(
        [
            {"name": "first", "cmd": "record", "cmd_args": ["--label", "first"], "cron": "0 * * * *", "backfill": True},
            {
                "name": "second",
                "cmd": "record",
                "cmd_args": ["--label", "second"],
                "cron": "0 * * * *",
                "backfill": True,
                "depends_on": ["first"],
            },
            {**HOURLY, "name": "capped", "max_backfill": 50},
        ]
    )
    tick(at("2026-04-25 09:00"))
    slots = hours(at("2026-04-25 10:00"), at("2026-05-01 10:00"))
    control.FAILING.add(slots[100].isoformat())  # first fails there, so second waits there
    control.CALLS.clear()
    report = tick(at("2026-05-01 10:00"))
    ran = Counter(call["label"] for call in control.CALLS)
    assert ran == {"first": 101, "second": 100, "": 50}
    assert [call["run_time"] for call in control.CALLS if call["label"] == "second"] == slots[:100]
    assert job("second").next_slot == slots[100] and report.waiting[0][0] == "second"
    assert job("capped").next_slot == slots[50]
    assert not Log.objects.filter(outcome="running").exists()
    assert not Log.objects.filter(job__name="second", slot__gte=slots[100]).exists()


@pytest.mark.slow
@pytest.mark.django_db
def test_the_report_keeps_counts_and_failures_and_its_memory_does_not_grow_with_the_slots(jobs, quiet, receivers):
    jobs([{**HOURLY, "cmd": "noop"}, {"name": "bad", "cmd": "boom", "frequency": "1h"}])
    tick(at("2026-05-01 09:00"))
    held = {}  # slots run -> memory held then (garbage collected)
    run = Counter()

    def measure(sender, spec, **kwargs):
        run[spec.name] += 1
        if run[spec.name] % 250 == 0 and spec.name == "hourly":
            gc.collect()
            held[run[spec.name]] = tracemalloc.get_traced_memory()[0]

    receivers.connect(signals.attempt_started, measure)
    tracemalloc.start()
    try:
        report = tick(at("2026-09-01 10:00"))
    finally:
        tracemalloc.stop()
    slots = len(hours(at("2026-05-01 10:00"), at("2026-09-01 10:00")))
    assert report.attempts == {"hourly": {"success": slots}, "bad": {"failure": 1}}
    assert [(r.job, r.attempt.outcome) for r in report.failed] == [("bad", "failure")]
    # What a batch holds comes and goes (up to MAX_BATCH attempts, some 100 KB): compare
    # the least held early and late. 1,500 more slots run: every attempt kept would be
    # 1 MB more, and every day's slots kept 90 KB.
    early = min(held[n] for n in range(250, 1500, 250))
    late = min(held[n] for n in range(1750, 3000, 250))
    assert late - early < 150_000, (early, late)


# --- a real runner process, killed mid-batch ------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_runner_killed_mid_batch_repeats_at_most_its_unrecorded_slots_and_loses_none():
    top = timezone.now().replace(minute=0, second=0, microsecond=0)
    slots = [top - timedelta(hours=h) for h in range(MAX_BATCH + 199, -1, -1)]
    Job.objects.create(name="catchup", first_run=slots[0], next_slot=slots[0], next_run=slots[0])
    killed = MAX_BATCH + 50  # past a batch's most: some outcomes were written before
    crash_at = format_instant(slots[killed])
    entry = {"name": "catchup", "cmd": "work", "cmd_args": ["--label", "catchup"], "cron": "0 * * * *"}
    settings = {"CRONTABBER_LEASE_SECONDS": 1, "CRONTABBER_RETRY_DELAY_SECONDS": 1}
    runner = start_runner(
        [{**entry, "backfill": True, "cmd_args": [*entry["cmd_args"], f"--kill-at={crash_at}"]}], settings
    )
    runner.communicate(timeout=120)
    assert runner.returncode == -signal.SIGKILL
    ran = [e.slot for e in Execution.objects.order_by("id")]
    assert ran == [format_instant(slot) for slot in slots[: killed + 1]], "oldest first, each told its slot"
    recorded = [format_instant(log.slot) for log in Log.objects.filter(outcome="success").order_by("slot")]
    assert recorded == ran[: len(recorded)], "only slots that ran are recorded, and with no gap"
    assert len(recorded) > 0, "outcomes were written during the catch-up, not only at its end"
    unrecorded = ran[len(recorded) :]
    assert len(unrecorded) <= MAX_BATCH

    time.sleep(1.1)  # the dead runner's claim expires
    runner = start_runner([{**entry, "backfill": True}], settings)
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 1 and "did not succeed: catchup interrupted" in err, err
    abandoned = Log.objects.filter(outcome="interrupted", error_type="Abandoned").order_by("slot").first()
    assert abandoned.slot == slots[len(recorded)], "the first unrecorded slot was its runner's attempt under way"
    assert Job.objects.get(name="catchup").crash_count == 1, "its runner died under it: an error, with a back-off"
    time.sleep(1.1)  # the back-off
    runner = start_runner([{**entry, "backfill": True}], settings)
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err
    executions = Counter(e.slot for e in Execution.objects.all())
    assert set(executions) == {format_instant(slot) for slot in slots}, "no slot lost"
    assert sorted(slot for slot, runs in executions.items() if runs > 1) == sorted(unrecorded), (
        "a slot ran twice only if its outcome was not yet recorded"
    )
    assert Counter(log.slot for log in Log.objects.filter(outcome="success")) == Counter(slots)
    assert not Log.objects.filter(outcome="running").exists()
    assert Job.objects.get(name="catchup").claimed_by == ""


@pytest.mark.slow
@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_a_long_catch_up_keeps_its_claim_and_a_runner_started_meanwhile_runs_none_of_it():
    top = timezone.now().replace(minute=0, second=0, microsecond=0)
    slots = [top - timedelta(hours=h) for h in range(599, -1, -1)]
    Job.objects.create(name="catchup", first_run=slots[0], next_slot=slots[0], next_run=slots[0])
    registry = [
        {
            "name": "catchup",
            "cmd": "work",
            "cmd_args": ["--label", "catchup", "--seconds", "0.005"],
            "cron": "0 * * * *",
            "backfill": True,
        }
    ]
    settings = {"CRONTABBER_LEASE_SECONDS": 0.6}  # the catch-up takes several leases
    first = start_runner(registry, settings)
    assert wait_for(lambda: Execution.objects.count() >= 20)
    second = start_runner(registry, settings)
    for runner in (first, second):
        _, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, err
    executions = list(Execution.objects.order_by("id"))
    assert [e.slot for e in executions] == [format_instant(slot) for slot in slots], "each once, oldest first"
    assert {e.pid for e in executions} == {first.pid}
    assert Counter(log.slot for log in Log.objects.filter(outcome="success")) == Counter(slots)
