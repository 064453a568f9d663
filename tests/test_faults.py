"""Many runners and crashes, with real cronrun processes on a real database server
(PostgreSQL, MariaDB): row locks and concurrent transactions as in production.

Every loop here is bounded in count and in time."""

import os
import random
import signal
import time
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crontabber.models import Job, Log
from tests.helpers import start_runner, wait_for
from tests.jobs.models import Execution

pytestmark = [pytest.mark.server_db, pytest.mark.django_db(transaction=True)]
ROUNDS = int(os.environ.get("CRONTABBER_FAULT_ROUNDS", "4"))


def finish(process, timeout=60):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def drop_other_connections():
    """The server drops every other connection to this database, as a restart or a failover does."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        else:  # MariaDB
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
            for (thread,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL CONNECTION {int(thread)}")
                except Exception as error:  # it ended by itself meanwhile
                    if "Unknown thread id" not in str(error):
                        raise


def backlog(names, hours):
    """Give each job a backlog: its next slot ``hours`` hours ago, on the hour."""
    top = timezone.now().replace(minute=0, second=0, microsecond=0)
    Job.objects.filter(name__in=names).update(
        first_run=top - timedelta(hours=hours),
        next_slot=top - timedelta(hours=hours),
        next_run=top - timedelta(hours=hours),
        last_success=None,
    )
    return [top - timedelta(hours=h) for h in range(hours, -1, -1)]


@pytest.mark.slow
def test_concurrent_runners_run_every_slot_of_every_job_exactly_once():
    # Each slot takes 10 ms, so a round's 200 slots outlast the runners' start-up skew: with
    # no-op jobs the first runner up could finish them alone before the others started
    # (seen on MariaDB under load), and the round would test no concurrency at all.
    registry = [
        {
            "name": f"job-{n}",
            "cmd": "work",
            "cmd_args": ["--label", f"job-{n}", "--seconds", "0.01"],
            "cron": "0 * * * *",
            "backfill": True,
        }
        for n in range(50)
    ]
    names = [entry["name"] for entry in registry]
    for round_ in range(ROUNDS):
        Execution.objects.all().delete()
        Log.objects.all().delete()
        Job.objects.all().delete()
        Job.objects.bulk_create([Job(name=name) for name in names])
        slots = backlog(names, 3)
        runners = [start_runner(registry) for _ in range(4 + round_ % 5)]
        results = [finish(runner) for runner in runners]
        assert all(code == 0 for code, _, _ in results), [(code, err) for code, _, err in results if code]
        executions = Counter((e.label, e.slot) for e in Execution.objects.all())
        expected = {(name, slot.isoformat()) for name in names for slot in slots}
        assert set(executions) == expected, f"round {round_}: missing {expected - set(executions)}"
        assert max(executions.values()) == 1, f"round {round_}: ran twice: {executions.most_common(3)}"
        assert Log.objects.filter(outcome="success").count() == len(expected)
        assert not Job.objects.exclude(claimed_by="").exists()
        pids = {e.pid for e in Execution.objects.all()}
        assert len(pids) > 1, "the runners shared the work"


@pytest.mark.slow
def test_a_runner_killed_at_random_moments_loses_no_slot_and_no_slot_runs_concurrently():
    registry = [
        {
            "name": "backfill",
            "cmd": "work",
            "cmd_args": ["--label", "backfill", "--seconds", "0.1"],
            "cron": "0 * * * *",
            "backfill": True,
        }
    ]
    Job.objects.create(name="backfill")
    slots = backlog(["backfill"], 16)
    fast_lease = {
        "CRONTABBER_LEASE_SECONDS": 0.5,
        "CRONTABBER_RETRY_DELAY_SECONDS": 0,  # (an abandoned attempt backs off)
        "CRONTABBER_CRASHES_BEFORE_ISOLATION": 1000,  # the test kills the runners, not the job
    }
    rng = random.Random(20261123)

    def succeeded():
        return Log.objects.filter(outcome="success").values("slot").distinct().count()

    def live_holder(runners):
        """The runner that holds the job once one does, or None when every runner is done."""
        for _ in range(500):
            holder = next((r for r in runners if f":{r.pid}:" in Job.objects.get(name="backfill").claimed_by), None)
            if holder is not None and holder.poll() is None:
                return holder
            if all(r.poll() is not None for r in runners):
                return None
            time.sleep(0.02)
        return None

    killed_at = {}  # pid -> when it was killed
    most_kills = 6
    deadline = time.monotonic() + 300  # generous: on a loaded machine a trial takes seconds; 40 trials bound it
    trials = 0
    while time.monotonic() < deadline and trials < 40:
        done = succeeded()
        if done == len(slots):
            break
        trials += 1
        runners = [start_runner(registry, fast_lease) for _ in range(2)]
        # Kill the runner holding the job at a random moment of its work, and the other one
        # too if it takes the job over: after 0 to 2 more slots succeed (so that no runner
        # works the whole backlog off before the test reacts, however loaded the machine),
        # then up to a slot's time on. Six kills, then the runners finish the backlog.
        while len(killed_at) < most_kills and succeeded() < len(slots) - 1 and (holder := live_holder(runners)):
            more = min(succeeded() + rng.randint(0, 2), len(slots) - 1)
            wait_for(lambda more=more, holder=holder: succeeded() >= more or holder.poll() is not None, seconds=60)
            time.sleep(rng.uniform(0.0, 0.1))
            if holder.poll() is None:
                holder.send_signal(signal.SIGKILL)
                killed_at[holder.pid] = time.time()
        for runner in runners:
            finish(runner)
        time.sleep(0.6)  # let a dead runner's claim expire, as it would between ticks
    assert trials < 40 and time.monotonic() < deadline, "the backlog was not worked off"
    assert len(killed_at) >= 3, "too few kills to mean anything"
    successes = {log.slot for log in Log.objects.filter(outcome="success")}
    assert successes == set(slots), "every slot has a success row"
    by_slot = defaultdict(list)
    for e in Execution.objects.all():
        # A killed runner's job dies with it: its end is the kill.
        end = e.finished if e.finished is not None else killed_at.get(e.pid, float("inf"))
        by_slot[e.slot].append((e.started, end))
    for slot, runs in by_slot.items():
        runs.sort()
        for (_, first_end), (second_start, _) in zip(runs, runs[1:]):
            assert second_start >= first_end, f"slot {slot} ran concurrently"
    # Attempts cut short by a kill end as interrupted once the job is taken over.
    assert Log.objects.filter(outcome="interrupted").exists()
    assert not Log.objects.filter(outcome="running").exists()


def test_a_job_running_past_two_lease_lengths_is_not_run_by_a_second_runner():
    registry = [{"name": "long", "cmd": "work", "cmd_args": ["--label", "long", "--seconds", "3"], "frequency": "1h"}]
    settings = {"CRONTABBER_LEASE_SECONDS": 1}
    first = start_runner(registry, settings)
    assert wait_for(lambda: Execution.objects.exists())
    others = []
    for _ in range(5):  # more runners tick while the first one works: 1 s lease, 3 s job
        others.append(start_runner(registry, settings))
        time.sleep(0.5)
    results = [finish(p) for p in [first, *others]]
    assert all(code == 0 for code, _, _ in results), results
    assert Execution.objects.count() == 1
    assert list(Log.objects.values_list("outcome", flat=True)) == ["success"]


@pytest.mark.slow
def test_a_database_cut_mid_tick_fails_the_tick_cleanly_and_the_next_tick_finishes_the_work():
    registry = [
        {
            "name": "cut",
            "cmd": "work",
            "cmd_args": ["--label", "cut", "--seconds", "1"],
            "cron": "0 * * * *",
            "backfill": True,
        }
    ]
    settings = {"CRONTABBER_LEASE_SECONDS": 1, "CRONTABBER_RETRY_DELAY_SECONDS": 0}
    Job.objects.create(name="cut")
    slots = backlog(["cut"], 2)
    runner = start_runner(registry, settings)
    assert wait_for(lambda: Execution.objects.exists())
    drop_other_connections()
    code, out, err = finish(runner)
    assert code == 1
    assert "Traceback" not in err
    # Log lines may come before it; the command's own error is one line, the last.
    assert err.strip().splitlines()[-1].startswith("CommandError: database error: "), err
    time.sleep(1.1)  # the claim it could not release expires
    code, out, err = finish(start_runner(registry, settings))
    assert code == 1 and "did not succeed: cut interrupted" in err, "its attempt under way is on record: an error"
    code, out, err = finish(start_runner(registry, settings))
    assert code == 0, err
    assert {log.slot for log in Log.objects.filter(outcome="success")} == set(slots)
    assert Job.objects.get(name="cut").claimed_by == ""


def test_sigterm_lets_the_running_job_finish_and_starts_nothing_new():
    registry = [
        {
            "name": f"w{n}",
            "cmd": "work",
            "cmd_args": ["--label", f"w{n}", "--seconds", "1"],
            "frequency": "1h",
        }
        for n in range(3)
    ]
    runner = start_runner(registry, {"CRONTABBER_STOP_GRACE_SECONDS": 30})
    assert wait_for(lambda: Execution.objects.exists())
    runner.send_signal(signal.SIGTERM)
    code, out, err = finish(runner)
    assert code == 0, err
    assert list(Log.objects.values_list("outcome", flat=True)) == ["success"]
    assert not Job.objects.exclude(claimed_by="").exists()


def test_sigterm_past_the_grace_interrupts_the_job_and_releases_its_claim_at_once():
    registry = [{"name": "slow", "cmd": "work", "cmd_args": ["--label", "slow", "--seconds", "20"], "frequency": "1h"}]
    settings = {"CRONTABBER_STOP_GRACE_SECONDS": 0.5, "CRONTABBER_LEASE_SECONDS": 600}
    runner = start_runner(registry, settings)
    assert wait_for(lambda: Execution.objects.exists())
    runner.send_signal(signal.SIGTERM)
    code, out, err = finish(runner, timeout=15)
    assert code == 0, err
    log = Log.objects.get()
    assert log.outcome == "interrupted" and "SIGTERM" in log.error_value
    job = Job.objects.get(name="slow")
    assert job.claimed_by == "" and job.error_count == 0 and job.next_run <= timezone.now()
    # The next runner resumes at once, without waiting for the 10-minute lease.
    Execution.objects.all().delete()
    quick = [{**registry[0], "cmd_args": ["--label", "slow"]}]
    code, out, err = finish(start_runner(quick, settings))
    assert code == 0 and Execution.objects.count() == 1
    assert list(Log.objects.order_by("id").values_list("outcome", flat=True)) == ["interrupted", "success"]


@pytest.mark.slow
def test_two_signals_at_once_are_one_stop_and_a_later_second_one_interrupts():
    registry = [{"name": "slow", "cmd": "work", "cmd_args": ["--label", "slow", "--seconds", "4"], "frequency": "1h"}]
    runner = start_runner(registry, {"CRONTABBER_STOP_GRACE_SECONDS": 60})
    assert wait_for(lambda: Execution.objects.exists())
    runner.send_signal(signal.SIGTERM)
    runner.send_signal(signal.SIGTERM)  # e.g. systemd signalling the loop and cronrun together
    code, out, err = finish(runner)
    assert code == 0 and list(Log.objects.values_list("outcome", flat=True)) == ["success"]
    Job.objects.filter(name="slow").update(run_requested=timezone.now())  # "run now"
    Execution.objects.all().delete()
    runner = start_runner(registry, {"CRONTABBER_STOP_GRACE_SECONDS": 60})
    assert wait_for(lambda: Execution.objects.exists())
    runner.send_signal(signal.SIGTERM)
    time.sleep(2.2)
    runner.send_signal(signal.SIGTERM)
    code, out, err = finish(runner)
    assert code == 0 and Log.objects.order_by("-id").first().outcome == "interrupted"
