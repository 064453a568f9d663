"""Task backends tell the truth (docs/tasks.md): a re-run waits for a worker without giving
up on an attempt no worker has taken; an attempt given up as lost is recorded when its
result comes after all; a backend that cannot be read is the tick's error, not the job's;
the attempts of jobs disabled or removed since they were queued are recorded when their
results come; cronunlock --queued gives up what will never come. The database backend's
worker runs in this process, in batch mode."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from crontabber.models import Control, Job, Log
from tests.helpers import at, job, outcomes, tick
from tests.test_tasks import worker_runs_ready_tasks

pytest.importorskip("django_tasks_db")
pytestmark = pytest.mark.django_db(transaction=True)
T0 = "2026-05-04 10:00"
RECORD = {"cmd": "record", "frequency": "1h", "backfill": True, "backend": "db"}


def rows(name):
    return list(Log.objects.filter(job__name=name).order_by("slot", "attempt"))


def test_a_re_run_no_worker_takes_up_is_left_queued_and_recorded_when_it_runs(jobs, settings):
    settings.CRONTABBER_KILL_GRACE_SECONDS = 0
    jobs([{**RECORD, "timeout": 0.3}])
    tick(at(T0))
    worker_runs_ready_tasks()
    tick(at("2026-05-04 10:01"))
    before = job("record")
    out = StringIO()
    call_command("cronrerun", "record", "--from", "2026-05-04T10:00Z", "--to", "2026-05-04T10:00Z", stdout=out)
    again = rows("record")[-1]
    assert (again.attempt, again.outcome, again.rerun) == (2, "queued", True), "waited for, not given up"
    worker_runs_ready_tasks()
    tick(at("2026-05-04 10:02"))
    again.refresh_from_db()
    assert again.outcome == "success"
    after = job("record")
    assert (after.next_slot, after.next_run) == (before.next_slot, before.next_run), "a re-run's: the schedule stays"


def test_an_attempt_given_up_as_lost_is_recorded_when_its_result_comes_after_all(jobs, settings):
    from django_tasks_db.models import DBTaskResult

    jobs([{**RECORD, "timeout": 60}])
    tick(at(T0))
    DBTaskResult.objects.update(status="RUNNING", started_at=at(T0))  # a worker took it, and went silent
    tick(at("2026-05-04 10:05"))
    lost, again = rows("record")
    assert (lost.outcome, lost.error_type, again.outcome) == ("interrupted", "Lost", "queued")
    result = DBTaskResult.objects.get(id=lost.result_id)
    value = {"outcome": "success", "duration": 1.0, "output": "late", "error_type": "", "error_value": "",
             "traceback": ""}  # fmt: skip
    result.status, result.finished_at, result.return_value = "SUCCESSFUL", timezone.now(), value
    result.save()
    tick(at("2026-05-04 10:06"))
    lost.refresh_from_db()
    assert (lost.outcome, lost.output) == ("success", "late") and "recorded late" in lost.error_value


def test_a_backend_that_cannot_be_read_is_the_ticks_error_not_the_jobs(jobs, settings, monkeypatch):
    from django_tasks_db.backend import DatabaseBackend

    jobs([RECORD])
    tick(at(T0))

    def down(self, result_id):
        raise ConnectionError("the result store is down")

    monkeypatch.setattr(DatabaseBackend, "get_result", down)  # its store unreachable
    report = tick(at("2026-05-04 10:01"))
    assert outcomes("record") == [(at(T0), "queued")] and job("record").error_count == 0
    assert report.unreadable and "the result store is down" in Control.load().last_tick_error
    monkeypatch.undo()
    worker_runs_ready_tasks()
    tick(at("2026-05-04 10:02"))
    assert outcomes("record")[0] == (at(T0), "success") and Control.load().last_tick_error == ""


def test_a_disabled_jobs_queued_attempt_is_recorded_when_its_result_comes(jobs):
    jobs([RECORD])
    tick(at(T0))
    Job.objects.filter(name="record").update(enabled_override=False)
    worker_runs_ready_tasks()
    tick(at("2026-05-04 10:01"))
    assert outcomes("record") == [(at(T0), "success")], "recorded; and no slot of it runs"
    assert job("record").last_success == at(T0)


def test_a_removed_jobs_queued_attempt_is_recorded_on_its_row(jobs):
    jobs([RECORD, {**RECORD, "name": "other"}])
    tick(at(T0))
    jobs([{**RECORD, "name": "other"}])
    worker_runs_ready_tasks()
    tick(at("2026-05-04 10:01"))
    (log,) = rows("record")
    assert log.outcome == "success" and "no longer in the registry" in log.error_value


def test_cronunlock_queued_gives_up_what_will_never_come_and_the_slot_runs_again(jobs):
    from django_tasks_db.models import DBTaskResult

    jobs([RECORD])
    tick(at(T0))
    DBTaskResult.objects.all().delete()  # the queue lost it
    out = StringIO()
    call_command("cronunlock", "record", "--queued", stdout=out)
    assert "record: gave up 1 attempt queued on a task backend" in out.getvalue()
    (given_up,) = rows("record")
    assert (given_up.outcome, given_up.error_type) == ("interrupted", "GivenUp")
    tick(at("2026-05-04 10:01"))
    assert [log.outcome for log in rows("record")] == ["interrupted", "queued"]
    assert json.loads(json.dumps([log.attempt for log in rows("record")])) == [1, 2]
