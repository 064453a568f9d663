"""Hypothesis throws random registries, operators' overrides, command lines and job
behaviours at cronrun, and checks the promises: no traceback out of the command, only
documented exit statuses, no row left running, and every healthy job's due slots run
exactly once. CRONTABBER_FUZZ_EXAMPLES sets the depth (a deeper run: 500)."""

import json
import os
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crontabber.models import Control, Job, Log
from crontabber.registry import load_jobs, validate
from tests.helpers import at, child_env, manage
from tests.jobs import control
from tests.jobs.management.commands.misbehave import LONG_SECRET
from tests.jobs.models import Execution
from tests.scrub_corpus import SHAPES

SECRETS = [secret for _, _, secret in SHAPES]

pytestmark = pytest.mark.django_db(transaction=True)
EXAMPLES = int(os.environ.get("CRONTABBER_FUZZ_EXAMPLES", "25"))
START = at("2026-05-01 10:07")
SCHEDULES = [
    {"frequency": "5m"},
    {"frequency": "1h"},
    {"frequency": "1d", "time": "03:30"},
    {"cron": "*/10 * * * *"},
    {"cron": "0 * * * *", "timezone": "Europe/Berlin"},
]
BEHAVIOURS = [
    "raise", "exit", "base-exception", "autocommit-off", "begin", "swallow-timeout", "nul", "flood", "long-secret",
]  # fmt: skip
BAD_VALUES = [
    {"frequency": "999999999d"},
    {"frequency": "٣m"},
    {"timeout": float("nan")},
    {"timeout": 1e300},
    {"max_backfill": 10**30},
    {"name": "x" * 250},
    {"cron": "*/0 * * * *"},
    {"name": "two\nlines"},
    {"name": "a\x1b[31mred"},
]
OVERRIDES = ["", "", "30m", "06:00,18:00", "999999999999m", "25:00", "٣m", "1d"]


@st.composite
def registries(draw):
    entries = []
    for n in range(draw(st.integers(1, 4))):
        entry = {
            "name": f"ok{n}",
            "cmd": "record",
            "cmd_args": ["--label", f"ok{n}"],
            **draw(st.sampled_from(SCHEDULES)),
        }
        entry["backfill"] = draw(st.booleans())
        if draw(st.integers(0, 4)) == 0:
            entry["max_backfill"] = draw(st.integers(1, 5))
        if n and draw(st.integers(0, 3)) == 0:
            entry["depends_on"] = [f"ok{draw(st.integers(0, n - 1))}"]
        entries.append(entry)
    for n in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(BEHAVIOURS))
        args = ["--how", how, "--seconds", "0.5"]
        entry = {"name": f"bad{n}", "cmd": "misbehave", "cmd_args": args, **draw(st.sampled_from(SCHEDULES))}
        if how == "swallow-timeout":
            entry["timeout"] = 0.1
        entries.append(entry)
    if draw(st.booleans()):  # a task whose return value carries secrets
        entries.append({"name": "leaky", "task": "tests.jobs.tasks.leaky", "frequency": "1h"})
    if draw(st.integers(0, 5)) == 0:
        entries[0] = {**entries[0], **draw(st.sampled_from(BAD_VALUES))}
    return entries


command_lines = st.sampled_from(
    [
        [],
        [],
        ["--dry-run"],
        ["--job", "ok0"],
        ["--job", "ok0", "--force"],
        ["--job", "ok0", "--force", "--job-arg", "colour=red"],
        ["--job", "ghost"],
        ["--force"],
        ["--max-ticks", "1"],
        ["--job-arg", "x"],
    ]
)
# Repairs given times at the year limits: one line, never a traceback.
repairs = st.sampled_from(
    [
        [],
        ["cronrerun", "ok0", "--from", "0001-01-01T00:00Z", "--to", "2026-05-01T10:00Z"],
        ["cronrerun", "ok0", "--from", "2026-05-01T09:00Z", "--to", "9999-12-31T23:59Z"],
        ["cronmarksuccess", "ok0", "--time", "0001-01-01T00:30+05:00"],
        ["cronmarksuccess", "ok0", "--time", "9999-12-31T23:59Z"],
    ]
)


def cronrun(args, command="cronrun"):
    """A command as its user sees it: returns the exit status, or fails the test on a traceback."""
    try:
        call_command(command, *args)
    except CommandError:
        return 1
    except SystemExit as exit_:
        return exit_.code
    return 0


def clean_slate():
    Log.objects.all().delete()
    Job.objects.all().delete()
    Control.objects.all().delete()
    Execution.objects.all().delete()
    control.reset()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    registry=registries(),
    overrides=st.lists(st.tuples(st.sampled_from(OVERRIDES), st.sampled_from([None, True, False])), max_size=4),
    args=command_lines,
    repair=repairs,
    later=st.integers(1, 600),
)
def test_cronrun_keeps_its_promises_whatever_it_is_given(jobs, registry, overrides, args, repair, later):
    clean_slate()
    jobs(registry)
    with freeze_time(START):
        first = cronrun([])
    for (schedule, enabled), name in zip(overrides, [e["name"] for e in registry]):
        Job.objects.filter(name=name).update(schedule_override=schedule, enabled_override=enabled)
    now = START + timedelta(minutes=later)
    with freeze_time(now):
        second = cronrun(args)
        fixed = cronrun(repair[1:], repair[0]) if repair else 0
        third = cronrun([])
    assert {first, second, fixed, third} <= {0, 1}
    stored = json.dumps(list(Log.objects.values_list("output", "error_value", "traceback")))
    assert not [secret for secret in (*SECRETS, LONG_SECRET) if secret in stored], "a secret was stored"
    assert not Log.objects.filter(outcome="running").exists()
    assert set(Log.objects.values_list("outcome", flat=True)) <= {"success", "failure", "timeout", "skipped"}
    assert not Job.objects.exclude(claimed_by="").exists()
    if validate()[1]:  # a registry mistake: refused before anything ran
        assert not Log.objects.exists()
        return
    runs = [(call["label"], call["run_time"]) for call in control.CALLS if call["run_time"] is not None]
    repeats = Counter(runs) - Counter(set(runs))
    named = {name for flag, name in zip(args, args[1:]) if flag == "--job"} or {e["name"] for e in registry}
    forced = named if "--force" in args else set()  # a forced run runs its job's latest slot again
    assert all(label in forced for label, _ in repeats) and max(repeats.values(), default=0) <= 1, "a slot ran twice"
    for spec in load_jobs():
        job = Job.objects.get(name=spec.name)
        healthy = spec.cmd == "record" and spec.backfill and not spec.depends_on and spec.max_backfill is None
        if healthy and job.enabled_override is not False and not job.schedule_override and job.first_run:
            succeeded = Counter(Log.objects.filter(job=job, outcome="success").values_list("slot", flat=True))
            most = 2 if spec.name in forced else 1  # a forced run may run its latest slot again
            assert all(1 <= succeeded[slot] <= most for slot in due_slots(spec, job, now)), spec.name


def due_slots(spec, job, now):
    """Every slot of the job's schedule from its first one through ``now``."""
    first = spec.schedule.first_slot(job.first_run)
    slots = [first] if first <= now else []
    for slot in spec.schedule.slots_after(first, job.first_run):
        if slot > now:
            break
        slots.append(slot)
    return slots


RUNNER_KILLERS = ["os-exit", "fork-exit", "raise"]


@pytest.mark.slow
@settings(max_examples=max(EXAMPLES // 4, 4), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    healthy=st.integers(1, 3),
    bad=st.lists(st.sampled_from(RUNNER_KILLERS), min_size=1, max_size=2),
    order=st.randoms(use_true_random=False),
)
def test_jobs_that_kill_or_fork_their_runner_never_stop_the_others(healthy, bad, order):
    """Real runner processes, one after another (a claim expires as the next starts): a
    job that kills its runner costs the others at most that tick, is isolated after three,
    and a forked child never runs a job a second time."""
    clean_slate()
    registry = [{"name": f"ok{n}", "cmd": "work", "cmd_args": ["--label", f"ok{n}"], "frequency": "1h"}
                for n in range(healthy)]  # fmt: skip
    registry += [{"name": f"bad{n}", "cmd": "misbehave", "cmd_args": ["--how", how], "frequency": "1h"}
                 for n, how in enumerate(bad)]  # fmt: skip
    order.shuffle(registry)
    quick = {"CRONTABBER_LEASE_SECONDS": 0.05, "CRONTABBER_RETRY_DELAY_SECONDS": 0}
    env = child_env(json.dumps(registry), TEST_SETTINGS=json.dumps(quick))
    # A runner dies of one killer at most, and the next records that death (the killer
    # backs off that tick): two runs a crash, three crashes a killer, then a clean run.
    runs = 2 * 3 * len(bad) + 1
    statuses = [manage("cronrun", env=env).returncode for _ in range(runs)]
    assert set(statuses) <= {0, 1, 17}, statuses  # 1: an attempt did not succeed; 17: the job killed it
    assert statuses[-1] != 17, "isolated after three, the killer no longer kills its runner"
    labels = Counter(Execution.objects.values_list("label", flat=True))
    # Each healthy job's slot ran; again only after a killer's first crash, which may cost
    # its batch's unwritten quick attempts a repeat (the crash rules, engine/ledger.py).
    assert all(1 <= labels[f"ok{n}"] <= 1 + len(bad) for n in range(healthy)), labels
    assert not Log.objects.filter(outcome="running").exists()
