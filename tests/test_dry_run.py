"""cronrun --dry-run predicts exactly what a real tick at the same instant runs: a
property test over random registries and states (dependencies, disabled jobs, back-off,
holds, claims of other runners, max_backfill, new jobs, starting deadlines, pauses)."""

import os
from datetime import timedelta

import pytest
from django.core.management import call_command
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crontabber.engine.runner import Runner
from crontabber.models import Control, Job, Log
from crontabber.outcomes import SPANS, Outcome
from tests.helpers import at
from tests.jobs import control

pytestmark = pytest.mark.django_db(transaction=True)
NOW = at("2026-05-01 12:00")
SCHEDULES = [{"frequency": "1h"}, {"cron": "*/30 * * * *"}, {"frequency": "1d", "time": "03:00"}]


@st.composite
def registries(draw):
    entries = []
    for n in range(draw(st.integers(1, 5))):
        entry = {"name": f"j{n}", "cmd": "record", "cmd_args": ["--label", f"j{n}"], **draw(st.sampled_from(SCHEDULES))}
        entry["backfill"] = draw(st.booleans())
        entry["enabled"] = draw(st.sampled_from([True, True, True, False]))
        if draw(st.booleans()):
            entry["max_backfill"] = draw(st.integers(1, 4))
        if draw(st.booleans()):
            entry["starting_deadline"] = draw(st.sampled_from([1800, 3 * 3600, 12 * 3600]))
        if n and draw(st.booleans()):
            entry["depends_on"] = sorted(set(draw(st.lists(st.sampled_from([f"j{d}" for d in range(n)]), max_size=2))))
        entries.append(entry)
    return entries


states = st.fixed_dictionaries(
    {
        "hours_behind": st.integers(0, 30),  # the job's next slot: this many hours before now (None: new)
        "new": st.booleans(),
        "backing_off": st.booleans(),
        "claimed_by_other": st.sampled_from([False, False, False, True]),
        "run_requested": st.sampled_from([False, False, False, True]),
        "paused": st.sampled_from([False, False, True]),  # disabled or held since, now enabled again
    }
)


def set_state(name, state):
    if state["new"]:
        return
    next_slot = NOW.replace(minute=0) - timedelta(hours=state["hours_behind"])
    Job.objects.create(
        name=name,
        first_run=at("2026-04-01 00:00"),
        next_slot=next_slot,
        next_run=NOW + timedelta(minutes=5) if state["backing_off"] else next_slot,
        error_count=1 if state["backing_off"] else 0,
        last_success=next_slot - timedelta(hours=1),
        schedule="",  # realigned on the tick, as after a registry change
        claimed_by="other:1:x" if state["claimed_by_other"] else "",
        claim_expires=NOW + timedelta(minutes=5) if state["claimed_by_other"] else None,
        run_requested=NOW - timedelta(minutes=1) if state["run_requested"] else None,
        paused_since=next_slot - timedelta(minutes=30) if state["paused"] else None,
    )


@settings(
    max_examples=int(os.environ.get("CRONTABBER_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(registry=registries(), states=st.lists(states, min_size=5, max_size=5), hold=st.booleans(), force=st.booleans())
def test_a_dry_run_lists_exactly_the_slots_a_real_tick_runs(jobs, settings, registry, states, hold, force):
    Log.objects.all().delete()
    Job.objects.all().delete()
    Control.objects.all().delete()
    control.reset()
    settings.CRONTABBER_DRY_RUN_SHOWN = 10_000
    jobs(registry)
    for entry, state in zip(registry, states):
        set_state(entry["name"], state)
    Control.objects.create(pk=1, hold_all=hold and not force)
    only = [entry["name"] for entry in registry] if force else None
    with freeze_time(NOW):
        dry = Runner().tick(only=only, force=force, dry_run=True)
        predicted = {(name, slot) for name, (shown, _, _) in dry.planned.items() for slot in shown}
        Runner().tick(only=only, force=force)
    ran = set(Log.objects.exclude(outcome__in=SPANS).values_list("job__name", "slot"))
    assert predicted == ran
    missed = set(Log.objects.filter(outcome=Outcome.MISSED).values_list("job__name", "since", "slot", "covers"))
    assert {(name, span.since, span.until, span.covers) for name, span in dry.missed.items()} == missed


def test_a_dry_run_shows_the_re_runs_queued_in_the_admin_and_queues_nothing_away(jobs, capsys):
    jobs([{"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    for hour in (10, 11, 12):
        with freeze_time(at(f"2026-05-01 {hour}:00")):
            Runner().tick()
    Job.objects.filter(name="hourly").update(rerun_from=at("2026-05-01 10:00"), rerun_to=at("2026-05-01 11:00"))
    logs = Log.objects.count()
    with freeze_time(at("2026-05-01 12:30")):
        call_command("cronrun", "--dry-run")
    out = capsys.readouterr().out
    assert "hourly: re-running 2026-05-01T10:00:00+00:00 to 2026-05-01T11:00:00+00:00" in out
    assert "would run hourly for 2026-05-01T10:00:00+00:00" in out and "for 2026-05-01T11:00:00+00:00" in out
    assert Log.objects.count() == logs and Job.objects.get(name="hourly").rerun_from == at("2026-05-01 10:00")
