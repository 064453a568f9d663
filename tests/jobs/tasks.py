"""Test jobs as Django Tasks (docs/tasks.md). They write what they did to the database,
so that a worker process's work can be seen from the test."""

import os
import time

from crontabber import SkipRun
from crontabber.registry.tasks import api
from tests.jobs.models import Execution

task = api().task


@task
def rollup(run_time=None, last_success=None, seconds=0.0):
    execution = Execution.objects.create(label="rollup", slot=run_time or "", pid=os.getpid(), started=time.time())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
    Execution.objects.filter(pk=execution.pk).update(finished=time.time())
    return {"run_time": run_time, "last_success": last_success}


@task
def failing(run_time=None):
    raise ValueError(f"failing on purpose for {run_time}")


@task
def fails_once_at_odd_minutes(run_time=None):
    """A no-op whose first attempt at each slot of an odd minute fails."""
    first = not Execution.objects.filter(label="fails_once", slot=run_time).exists()
    Execution.objects.create(label="fails_once", slot=run_time, pid=os.getpid(), started=time.time())
    if first and int(run_time[14:16]) % 2:
        raise ValueError(f"failing once on purpose for {run_time}")
    return "done"


@task
def skipping(**kwargs):
    raise SkipRun("nothing to roll up")


@task
def plain():
    return "plain done"


def not_a_task(run_time=None):
    return None


@task
def leaky(run_time=None):
    """Returns every secret shape of tests/scrub_corpus.py: a return value is output too."""
    from tests.scrub_corpus import SHAPES

    return {"lines": [text for _, text, _ in SHAPES]}


@task
def window(run_time=None, since=None):
    """A folded task: records the window it was told."""
    Execution.objects.create(label=since or "", slot=run_time or "", pid=os.getpid(), started=time.time())
    return {"since": since, "run_time": run_time}
