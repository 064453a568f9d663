"""Long work shows progress: a backlog's slots are numbered (counted once, cheaply; a lone
slot costs nothing more), and cronlist colours statuses on a terminal only."""

import io
from datetime import timedelta
from itertools import islice, takewhile

import pytest
from django.core.management import call_command
from freezegun import freeze_time

from crontabber import schedules as schedule
from crontabber.engine import report
from crontabber.engine.runner import Runner
from crontabber.schedules import build_override, build_schedule, parse_zone
from crontabber.schedules.cron import parse_cron
from tests.helpers import at, tick
from tests.jobs import control

REGISTRY = [
    {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True},
    {"name": "capped", "cmd": "record", "frequency": "1h", "backfill": True, "max_backfill": 2},
    {"name": "plain", "cmd": "record", "frequency": "1h"},
]


def lines_of(when):
    out = io.StringIO()
    with freeze_time(when):
        Runner(out=out).tick()
    return out.getvalue().splitlines()


@pytest.mark.django_db
def test_a_backlog_says_which_slot_of_how_many(jobs):
    jobs(REGISTRY)
    first = lines_of(at("2026-05-01 10:00"))
    assert all("[" not in line for line in first), "a lone slot has no counter"
    later = lines_of(at("2026-05-01 13:00"))
    hourly = [line for line in later if line.startswith("hourly")]
    assert [line.split(": ")[0] for line in hourly] == [f"hourly 2026-05-01T{h}:00:00+00:00" for h in (11, 12, 13)]
    assert [line.rsplit(" ", 1)[-1] for line in hourly] == ["[1/3]", "[2/3]", "[3/3]"]
    assert [line.rsplit(" ", 1)[-1] for line in later if line.startswith("capped")] == ["[1/2]", "[2/2]"]
    (plain,) = [line for line in later if line.startswith("plain")]
    assert "[" not in plain, "a job that coalesces runs one slot"


@pytest.mark.django_db
def test_a_long_backlog_prints_its_first_slots_then_one_a_second_and_its_last(jobs, monkeypatch):
    jobs([{"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True}])
    lines_of(at("2026-04-01 00:00"))
    monkeypatch.setattr(report, "SHOWN_EVERY_SECONDS", 3600.0)  # no line for time passing in this test
    counters = [line.rsplit(" ", 1)[-1] for line in lines_of(at("2026-04-11 12:00"))]
    assert counters == [f"[{n}/252]" for n in (*range(1, report.SHOWN_FIRST + 1), 252)]
    control.FAILING.add("2026-04-18T00:00:00+00:00")  # the 156th slot: its line is printed whatever the pace
    lines = lines_of(at("2026-04-21 12:00"))
    assert len(lines) == report.SHOWN_FIRST + 1
    assert lines[-1].startswith("hourly 2026-04-18T00:00:00+00:00: failure (") and lines[-1].endswith("[156/240]")
    monkeypatch.setattr(report, "SHOWN_EVERY_SECONDS", 0.0)  # a slow backlog: a line for every slot
    control.FAILING.clear()
    assert len(lines_of(at("2026-04-21 13:00"))) == 240 - 155 + 1


@pytest.mark.django_db
def test_a_tick_of_lone_slots_counts_nothing(jobs, monkeypatch):
    jobs(REGISTRY)
    tick(at("2026-05-01 10:00"))
    counted = []
    for cls in (schedule.Schedule, schedule.IntervalSchedule):
        monkeypatch.setattr(cls, "count", lambda *args, **kwargs: counted.append(args))
    tick(at("2026-05-01 11:00"))
    assert len(control.CALLS) == 6 and counted == []


SCHEDULES = [
    build_schedule(frequency="1h"),
    build_schedule(frequency="7m"),
    build_schedule(frequency="1d", at="02:30", zone="Europe/Berlin"),
    parse_cron("*/20 1-3 * * *", parse_zone("Europe/Berlin")),
    build_override("03:00,15:30", "America/New_York"),
]


@pytest.mark.parametrize("sched", SCHEDULES, ids=lambda s: s.description)
@pytest.mark.parametrize("most", [None, 1, 5])
def test_counting_slots_agrees_with_walking_them(sched, most):
    anchor = at("2026-03-20 00:00")
    first = sched.next_after(anchor, anchor)
    for until in (first - timedelta(minutes=1), first, first + timedelta(days=1), at("2026-04-05 00:00")):
        walked = [first, *takewhile(lambda slot, until=until: slot <= until, sched.slots_after(first, anchor))]
        expected = len([slot for slot in walked if slot <= until])
        expected = min(expected, most) if most else expected
        assert sched.count(first, until, anchor, most) == expected, until
    assert list(islice(sched.slots_after(first, anchor), 1))


# --- cronlist's colours ------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self):
        return True


RED, GREEN, BLUE = "\x1b[31", "\x1b[32", "\x1b[34"


@pytest.fixture
def listed(jobs, db):
    jobs([{"name": "good", "cmd": "record", "frequency": "1h"}, {"name": "bad", "cmd": "boom", "frequency": "1h"}])
    tick(at("2026-05-01 10:00"))

    def cronlist(stream, *args):
        with freeze_time(at("2026-05-01 10:30")):
            call_command("cronlist", *args, stdout=stream)
        return stream.getvalue()

    return cronlist


def test_cronlist_colours_statuses_on_a_terminal(listed, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = listed(Terminal()).splitlines()
    assert next(line for line in out if "bad" in line and "RuntimeError" not in line).startswith(RED)
    assert next(line for line in out if line.startswith(f"{GREEN}") and "good" in line)
    assert out[0].startswith("NAME"), "the header is plain"


def test_cronlist_shows_a_running_job_in_blue(listed, monkeypatch):
    from crontabber.models import Job

    monkeypatch.delenv("NO_COLOR", raising=False)
    Job.objects.filter(name="good").update(
        claimed_by="h:1:x", claimed_at=at("2026-05-01 10:29"), claim_expires=at("2026-05-01 10:34")
    )
    assert any(line.startswith(BLUE) and "good" in line for line in listed(Terminal()).splitlines())


@pytest.mark.parametrize(
    "no_color, stream, args", [("1", Terminal, ()), ("", io.StringIO, ()), ("", Terminal, ("--no-color",))]
)
def test_cronlist_has_no_colour_piped_with_no_color_or_asked(listed, monkeypatch, no_color, stream, args):
    monkeypatch.setenv("NO_COLOR", no_color)
    assert "\x1b[" not in listed(stream(), *args)


def test_force_color_colours_even_when_piped(listed, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert RED in listed(io.StringIO(), "--force-color")
