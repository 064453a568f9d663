"""The first run speaks: a tick prints one summary line (what ran, what did not succeed,
which job is due next), --loop a start line, -v 0 only failures, -v 2 the jobs' own
output lines without any LOGGING in the project; a one-shot cronrun exits 1 when an
attempt did not succeed, for the supervisor that runs it."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time

from tests.helpers import at, child_env, manage

pytestmark = pytest.mark.django_db
HOURLY = {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True}
BAD = {"name": "bad", "cmd": "boom", "frequency": "1h"}


def cronrun(*args, when=at("2026-05-01 10:00")):
    out = StringIO()
    with freeze_time(when):
        call_command("cronrun", *args, stdout=out)
    return out.getvalue().splitlines()


def test_a_tick_with_nothing_due_says_so_and_what_is_next(jobs):
    jobs([HOURLY])
    cronrun()
    assert cronrun(when=at("2026-05-01 10:20")) == [
        "nothing was due; next: hourly at 2026-05-01T11:00:00+00:00 (in 40 min)"
    ]


def test_a_tick_prints_a_line_per_attempt_then_its_summary(jobs):
    jobs([HOURLY, {**HOURLY, "name": "other", "cmd_args": ["--label", "o"]}])
    lines = cronrun()
    assert [re.sub(r"\(\d+\.\d\d s\)", "(<seconds> s)", line) for line in lines[:-1]] == [
        "hourly 2026-05-01T10:00:00+00:00: success (<seconds> s)",
        "other 2026-05-01T10:00:00+00:00: success (<seconds> s)",
    ]
    assert lines[-1] == "ran 2 slots of 2 jobs: 2 success; next: hourly at 2026-05-01T11:00:00+00:00 (in 60 min)"


def test_verbosity_0_prints_only_failures_and_a_failure_exits_1(jobs):
    jobs([HOURLY, BAD])
    out = StringIO()
    with (
        freeze_time(at("2026-05-01 10:00")),
        pytest.raises(CommandError, match="1 attempt did not succeed: bad failure"),
    ):
        call_command("cronrun", "-v", "0", stdout=out)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("bad 2026-05-01T10:00:00+00:00: failure")


def test_verbosity_2_prints_each_jobs_own_lines_without_logging_set_up(jobs):
    jobs([HOURLY])
    lines = cronrun("-v", "2")
    assert "hourly: recorded  2026-05-01T10:00:00+00:00" in lines


@pytest.mark.django_db(transaction=True)
def test_the_exit_status_is_what_a_supervisor_reads(jobs):
    ok, failing = [HOURLY], [HOURLY, BAD]
    assert manage("cronrun", env=child_env(json.dumps(ok))).returncode == 0
    result = manage("cronrun", env=child_env(json.dumps(failing)))
    assert result.returncode == 1 and result.stderr.strip().endswith("1 attempt did not succeed: bad failure")


@pytest.mark.django_db(transaction=True)
def test_the_loop_says_what_it_runs_when_it_starts(jobs):
    jobs([HOURLY])
    lines = cronrun("--loop", "--interval", "0.1", "--max-ticks", "1")
    assert lines[0].startswith("crontabber: 1 job, a tick at each slot and at least every 0.1 s, on ")
    assert lines[-1].startswith("ran 1 slot of 1 job: 1 success; next: hourly at")
