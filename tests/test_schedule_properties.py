"""Property tests: the slots our schedules yield equal those of independent oracles.

* Cron expressions are checked against cronsim (a test-only dependency; our schedule only
  borrows croniter's field parser, never cronsim).
* Frequencies are checked against plain definitions: ``Nm``/``Nh`` are ``anchor + k*step``
  in real time; ``Nd`` (with or without a time) is, on every N-th calendar day from the
  anchor's date, the instant cronsim gives for that wall time on that day (so ``1d`` at
  HH:MM is cron ``MM HH * * *``).

For every case the compared slots are those of the following year: all of them when there
are at most HEAD of them, otherwise the first HEAD plus the slots around each clock change
of that year (a day either side of it, fewer for schedules with many slots a day).

Where our documented semantics differ from cronsim's on purpose, ``cronsim_form`` rewrites
the expression and says why; the rule is then checked against ours by the comparison.

Examples run by default: see BUDGET (about 10,500 cases in all; the count is printed at
the end of the run). ``CRONTABBER_HYPOTHESIS_EXAMPLES=N`` runs N examples per test
instead, for a deeper run (random examples; ``--hypothesis-seed=N`` repeats one). By
default examples are derandomized and no example database is kept, so the same command on
the same commit tests the same cases. (Hypothesis also mixes in literals it finds in the
project's loaded modules, so the cases shift when that source changes.) Pure tests: no
database, no Django: they run once per Python and Django (in the SQLite suite and the Django 6
leg), not again on each database server.
"""

from __future__ import annotations

import inspect
import itertools
import os
import re
import time as clock
import tracemalloc
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crontabber.schedules import (
    CalendarSchedule,
    IntervalSchedule,
    ScheduleError,
    build_schedule,
    format_instant,
    parse_instant,
    truncate_to_minute,
)
from crontabber.schedules.cron import CronSchedule
from tests.helpers import database_independent_tests_run_here
from tests.test_schedule_dst import ZONES, transitions

if not database_independent_tests_run_here():
    pytest.skip("touches no database: runs in the SQLite suite (and the Django 6 leg) only", allow_module_level=True)

UTC = UTC
MINUTE = timedelta(minutes=1)
TINY = timedelta(microseconds=1)
YEAR = timedelta(days=365)
HEAD = 16  # slots compared from the start instant on
WINDOW = 24  # at most this many slots compared around one clock change

# --- Budget and profiles --------------------------------------------------------------------

# Examples per test. The cron, frequency and interval tests check each example in all five
# zones, so they run five cases per example: about 10,500 cases in all.
BUDGET = {"cron": 800, "frequency": 600, "interval": 500, "lazy": 200, "round_trip": 1000}
_DEEP = int(os.environ.get("CRONTABBER_HYPOTHESIS_EXAMPLES") or 0)
settings.register_profile(
    "crontabber-ci",
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,
    deadline=None,  # a slow machine is not a failure
    print_blob=False,
    # The suite's autouse fixtures are function-scoped and harmless here.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A deep run explores new examples each time; `pytest --hypothesis-seed=N` repeats one.
settings.register_profile(
    "crontabber-deep", settings.get_profile("crontabber-ci"), max_examples=_DEEP or 1, derandomize=False
)
PROFILE = settings.get_profile("crontabber-deep" if _DEEP else "crontabber-ci")
CASES: Counter = Counter()  # cases that ran, per kind


def budget(name: str) -> settings:
    return settings(PROFILE, max_examples=_DEEP or BUDGET[name])


class _CaseCount:
    """Prints how many generated cases ran, at the end of the pytest run."""

    def pytest_terminal_summary(self, terminalreporter):
        if CASES:
            parts = ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
            terminalreporter.write_line(f"schedule property cases: {sum(CASES.values())} ({parts})")


@pytest.fixture(autouse=True, scope="module")
def _count_cases(request):
    manager = request.config.pluginmanager
    if not manager.has_plugin("crontabber-schedule-cases"):
        manager.register(_CaseCount(), "crontabber-schedule-cases")


# --- Instants and zones ---------------------------------------------------------------------

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
CHANGES = sorted({change.instant for zone in ZONES for change in transitions(zone) if change.instant < END})
zones = st.sampled_from(ZONES)


@dataclass(frozen=True)
class Start:
    """Where a case starts, for any zone: a fixed instant in 2026 or 2027, or some time in
    the day and a half before one of that zone's clock changes (any zone's, for a zone
    without them); on a whole minute or not."""

    instant: datetime | None
    change: int
    minutes_before: int
    microseconds: int

    def in_zone(self, zone_name: str) -> datetime:
        if self.instant is not None:
            return self.instant
        changes = [c.instant for c in transitions(zone_name) if c.instant < END] or CHANGES
        when = changes[self.change % len(changes)] - self.minutes_before * MINUTE
        return when + self.microseconds * TINY


@st.composite
def starts(draw) -> Start:
    micro = draw(st.sampled_from([0, 0, 1, 59_999_999]) | st.integers(0, 59_999_999))
    if draw(st.booleans()):
        instant = START + draw(st.integers(0, (END - START) // MINUTE - 1)) * MINUTE + micro * TINY
        return Start(instant, 0, 0, 0)
    return Start(None, draw(st.integers(0, 7)), draw(st.integers(-90, 36 * 60)), micro)


@contextmanager
def noted(zone_name: str, start: datetime):
    """Name the zone and start instant of a failing case (Hypothesis shows only its inputs)."""
    try:
        yield
    except AssertionError as error:
        error.add_note(f"in {zone_name}, from {start.isoformat()}")
        raise


def instants() -> st.SearchStrategy[datetime]:
    return starts().map(lambda start: start.in_zone("Europe/Berlin"))


def is_ambiguous(instant: datetime, zone: ZoneInfo) -> bool:
    local = instant.astimezone(zone)
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


def changes_between(zone_name: str, start: datetime, end: datetime) -> list[datetime]:
    return [change.instant for change in transitions(zone_name) if start < change.instant <= end]


# --- Cron expressions -----------------------------------------------------------------------

MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MACROS = {  # written out here, independently of the schedule module
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@st.composite
def cron_field(draw, low: int, high: int, names: list[str] | None = None, dense: bool = False) -> str:
    """One field in any of the forms cron allows: *, */n, a, a-b, a-b/n, a/n and
    comma-separated lists of these ('*' among them too); month and weekday names in any
    case. Now and then a form cron refuses: a zero step, a downward range."""
    case = draw(st.sampled_from([str.upper, str.lower, str.title])) if names else str

    def step() -> int:
        return 0 if draw(st.integers(0, 39)) == 0 else draw(st.integers(1, high - low + 1))

    def show(value: int, name_ok: bool = True) -> str:
        if names and name_ok and value < low + len(names) and draw(st.booleans()):
            return case(names[value - low])
        return str(value)

    def term() -> str:
        kind = draw(st.sampled_from(["a", "a", "a-b", "a-b", "a-b/n", "a/n", "*/n"] * 6 + ["*", "b-a"]))
        a = draw(st.integers(low, high))
        if kind == "a":
            return show(a)
        if kind == "*":
            return "*"
        if kind == "*/n":
            return f"*/{step()}"
        if kind == "a/n":
            return f"{show(a)}/{step()}"
        if kind == "b-a":  # downward: refused by both (cronsim: "Bad minute")
            return f"{high}-{show(a)}" if a < high else f"{show(a)}-{low}"
        b = draw(st.integers(a, min(high, a + draw(st.sampled_from([0, 1, 3, high - low])))))
        # A name can end a range only if it sorts after the start (so no "FRI-SUN").
        span = f"{show(a)}-{show(b, name_ok=b < low + len(names or []))}"
        return span if kind == "a-b" else f"{span}/{step()}"

    # Mostly a few values for minutes and hours (every minute is slow to compare).
    shapes = ["list"] * 8 + ["*/n"] * 3 + ["*"] if dense else ["list", "list", "*/n", "*", "*"]
    shape = draw(st.sampled_from(shapes))
    if shape == "*":
        return "*"
    if shape == "*/n":
        return f"*/{draw(st.integers(2 if dense else 1, high - low + 1))}"
    return ",".join(term() for _ in range(draw(st.integers(1, 3))))


@st.composite
def cron_expressions(draw) -> str:
    if draw(st.integers(0, 11)) == 0:  # a macro, in either case
        macro = draw(st.sampled_from(list(MACROS)))
        return macro.upper() if draw(st.booleans()) else macro
    # Minutes and hours: mostly a few values (slots on most days); days: mostly '*'.
    minute = draw(cron_field(0, 59, dense=True))
    hour = draw(cron_field(0, 23, dense=True))
    if minute == "*" and hour == "*" and draw(st.booleans()):
        minute = "0"
    # "L" is the month's last day; "15W" (nearest weekday) is refused by both.
    dom = draw(st.sampled_from(["field"] * 12 + ["L", "L,15", "1,L", "15W"]))
    dom = draw(cron_field(1, 31)) if dom == "field" else dom
    month = draw(cron_field(1, 12, MONTH_NAMES))
    dow_kind = draw(st.integers(0, 9))
    if dow_kind <= 1:  # the n-th or last weekday, alone or beside others: "5#2", "1,2,3#1", "L5,*"

        def nth() -> str:
            if draw(st.integers(0, 2)) == 0:
                return f"L{draw(st.integers(0, 7))}"
            day = draw(st.sampled_from([str(d) for d in range(7)] + DAY_NAMES))
            return f"{day}#{draw(st.integers(1, 5))}"

        def plain() -> str:
            return draw(st.sampled_from(["*", "*/2", *map(str, range(8)), *DAY_NAMES, "1-5", "MON-FRI/2"]))

        dow = ",".join(
            nth() if dow_kind == 0 or draw(st.booleans()) else plain() for _ in range(draw(st.integers(1, 3)))
        )
    else:
        dow = draw(cron_field(0, 7, DAY_NAMES))
    return f"{minute} {hour} {dom} {month} {dow}"


_STEP_FROM = re.compile(r"^(\w+)/(\d+)$")
_LAST_WEEKDAY = re.compile(r"^[lL](\d)$")
_ONE_VALUE_RANGE = re.compile(r"^(\w+)-(\w+)/0*[1-9]\d*$")  # with a step (never 0: refused)


def cronsim_form(expression: str) -> str:
    """The expression cronsim must be given to mean what ours means.

    * Macros are written out (cronsim has none).
    * The last Friday of the month is "L5" for us (croniter's spelling), "5L" for cronsim.
    * A one-value range with a step, "5-5/10", is the value 5, as in Debian cron; cronsim
      reads it as "5/10" (5, 15, 25, ...). A zero step ("5-5/0") stays, for both to refuse.
    * In the day-of-week field "a/n" steps from a to Saturday (6); cronsim goes on to 7
      (Sunday again): "1/2" is Mon, Wed, Fri for us, and Sunday too for it.
      7 is Sunday everywhere, so "7/n" is "0/n". Other fields have no such alias.
    """
    fields = MACROS.get(expression.lower(), expression).split()

    def rewrite(term: str, index: int) -> str:
        if (match := _ONE_VALUE_RANGE.match(term)) and _value(match[1], index) == _value(match[2], index):
            return match[1]
        if index == 4 and (match := _LAST_WEEKDAY.match(term)):
            return f"{match[1]}L"
        if index == 4 and (match := _STEP_FROM.match(term)):
            start = _value(match[1], 4) % 7
            return "6" if start == 6 else f"{start}-6/{match[2]}"
        return term

    return " ".join(",".join(rewrite(term, i) for term in field.split(",")) for i, field in enumerate(fields))


def _value(text: str, index: int) -> int:
    names = {3: MONTH_NAMES, 4: DAY_NAMES}.get(index, [])
    if text.upper() in names:
        return names.index(text.upper()) + (1 if index == 3 else 0)
    return int(text)


def cronsim_slots(expression: str, zone, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """cronsim's slots in (after, until], at most ``limit``, as UTC instants."""
    begin = after
    # cronsim reads fixed-time expressions on the wall clock and drops `fold`: started at
    # the second occurrence of a repeated hour it returns the first occurrence of a later
    # wall time, which is before its start ("45 2 * * *" from Berlin 2026-10-25
    # 02:30+01:00 gives 02:45+02:00). Start it before the repeated hour instead.
    while is_ambiguous(begin, zone):
        begin -= timedelta(minutes=30)
    slots = []
    for slot in CronSim(expression, begin.astimezone(zone)):
        slot = slot.astimezone(UTC)
        if slot > until:
            break
        if slot > after:
            slots.append(slot)
            if len(slots) == limit:
                break
    return slots


# cronsim 2.8 loses half an hour after a 30-minute clock change when the minute or hour
# field starts with '*': it steps hours 3,600 s at a time from a minute 0 it computed at
# the old offset. "* 4 * * *" in Australia/Lord_Howe from 2026-10-04 02:45+11:00 gives
# 04:30+11:00; the clock shows 04:00 to 04:29 first. There cronsim runs on fixed offsets
# instead, one stretch between clock changes at a time: the same rule (each matching wall
# time as it really passes) with no clock change for it to get wrong.
HALF_HOUR_CHANGES = {"Australia/Lord_Howe"}


def is_real_time(expression: str) -> bool:
    minute, hour = expression.split()[:2]
    return minute.startswith("*") or hour.startswith("*")


def cronsim_on_fixed_offsets(expression: str, zone_name: str, after: datetime, until: datetime, limit: int):
    """Like cronsim_slots, for a real-time expression, one UTC offset at a time."""
    zone = ZoneInfo(zone_name)
    changes = [c.instant for c in transitions(zone_name, 2026, 2060) if after < c.instant <= until]
    slots = []
    for low, high in itertools.pairwise([after, *changes, until + TINY]):
        if len(slots) == limit:
            break
        fixed = timezone(low.astimezone(zone).utcoffset())
        begin = low if low is after else low - TINY  # (after, ... then [change, ...
        for slot in CronSim(expression, begin.astimezone(fixed)):
            slot = slot.astimezone(UTC)
            if slot >= high or len(slots) == limit:
                break
            slots.append(slot)
    return slots


def slots_of(schedule, after: datetime, until: datetime, limit: int, anchor: datetime) -> list[datetime]:
    """Our slots in (after, until], at most ``limit``."""
    taken = itertools.islice(schedule.slots_after(after, anchor), limit)
    return list(itertools.takewhile(lambda slot: slot <= until, taken))


def check_slot_shapes(slots: list[datetime]) -> None:
    """Slots are increasing whole UTC minutes that survive --run-time unchanged."""
    assert all(a < b for a, b in itertools.pairwise(slots))
    for slot in slots:
        assert slot.tzinfo is UTC and slot.second == 0 and slot.microsecond == 0
        text = format_instant(slot)
        assert text.endswith("+00:00") and parse_instant(text) == slot


def compare_year(ours, oracle, start: datetime, anchor: datetime, zone_name: str, spacing: timedelta):
    """Compare our slots with ``oracle(after, until, limit)`` over the year after ``start``:
    the first HEAD, then up to WINDOW slots around each clock change past those, from a
    few typical ``spacing``s before it. Returns the head."""
    until = start + YEAR
    head = slots_of(ours, start, until, HEAD, anchor)
    assert head == oracle(start, until, HEAD)
    check_slot_shapes(head)
    covered = head[-1] if len(head) == HEAD else until
    for change in changes_between(zone_name, covered, until):
        low = max(change - min(timedelta(hours=26), 8 * spacing), start)
        high = min(change + timedelta(hours=26), until)
        near = slots_of(ours, low, high, WINDOW, anchor)
        assert near == oracle(low, high, WINDOW), f"around the clock change at {change}"
        check_slot_shapes(near)
    return head


# --- Cron schedules against cronsim ---------------------------------------------------------


def at_utc(text: str) -> Start:
    return Start(datetime.fromisoformat(text).replace(tzinfo=UTC), 0, 0, 0)


@pytest.mark.slow
@budget("cron")
@given(expression=cron_expressions(), start=starts(), pick=st.integers(0, HEAD - 2))
# Divergences found so far, kept as explicit examples (see docs/schedules.md):
@example("5-5 * * * *", at_utc("2026-01-01 00:00"), 0)  # croniter: every minute
@example("0 0 * * MON-mon/2", at_utc("2026-01-01 00:00"), 0)  # croniter: every other day
@example("0 0 1,15 * L5", at_utc("2026-01-01 00:00"), 0)  # last Friday: was never
@example("0 0 15W * *", at_utc("2026-01-01 00:00"), 0)  # nearest weekday: was plain 15th
@example("0 0 * * 1/2", at_utc("2026-01-01 00:00"), 0)  # cronsim adds Sunday
@example("0 0 * * 1-1/3", at_utc("2026-01-01 00:00"), 0)  # cronsim reads 1/3
@example("45 2 * * *", at_utc("2026-10-25 01:30"), 0)  # cronsim from a repeated hour
@example("* 4 * * *", at_utc("2026-10-03 15:45"), 0)  # cronsim after Lord Howe's change
@example("0 0 1,*/2 1 0/1", at_utc("2026-01-01 00:00"), 0)  # croniter's '*' dropped the OR
@example("0 0 * *,2 *", at_utc("2026-01-01 00:00"), 0)  # '*' in a list: was February only
@example("0 0 * * 1,2,3#1", at_utc("2026-01-01 00:00"), 0)  # '#' beside plain weekdays: was refused
@example("5-5/0 * * * *", at_utc("2026-01-01 00:00"), 0)  # zero step: was minute 5, now refused
@example("0 0 * * FRI-MON", at_utc("2026-01-01 00:00"), 0)  # downward: croniter wraps, cron refuses
def test_cron_slots_equal_cronsims_in_every_zone(expression, start, pick):
    theirs = cronsim_form(expression)
    try:
        build_schedule(cron=expression)
    except ScheduleError:
        # Ours refuses only what cronsim refuses too, or what never matches a real date.
        try:
            assert not cronsim_slots(theirs, UTC, START, START + 30 * YEAR, 1), expression
        except CronSimError:
            pass
        CASES["cron (refused)"] += 1
        return
    parsed = CronSim(theirs, START)
    spacing = timedelta(days=1) / (len(parsed.minutes) * len(parsed.hours))
    for zone_name in ZONES:
        CASES["cron"] += 1
        with noted(zone_name, start.in_zone(zone_name)):
            check_cron_in_zone(expression, theirs, zone_name, start.in_zone(zone_name), pick, spacing)


def check_cron_in_zone(expression, theirs, zone_name, start, pick, spacing):
    zone = ZoneInfo(zone_name)
    schedule = build_schedule(cron=expression, zone=zone_name)
    assert isinstance(schedule, CronSchedule)

    def oracle(after, until, limit):
        if zone_name in HALF_HOUR_CHANGES and is_real_time(theirs):
            return cronsim_on_fixed_offsets(theirs, zone_name, after, until, limit)
        return cronsim_slots(theirs, zone, after, until, limit)

    head = compare_year(schedule, oracle, start, start, zone_name, spacing)

    # The other ways the runner asks for slots agree with the same oracle.
    following = head[0] if head else oracle(start, start + 30 * YEAR, 1)[0]
    assert schedule.next_after(start, start) == following
    minute = truncate_to_minute(start)  # a job first seen at `start` runs from this minute on
    assert schedule.first_slot(start) == (minute if oracle(minute - TINY, minute, 1) else following)
    latest = schedule.latest_at_or_before(start, start)
    assert latest is not None and latest <= start
    assert oracle(latest - TINY, latest, 1) == [latest] and not oracle(latest, start, 1)  # the last one
    if len(head) > pick + 1:
        a, b = head[pick], head[pick + 1]
        assert schedule.next_after(a, start) == b
        assert schedule.latest_at_or_before(b - TINY, start) == a


# Vixie cron's readings named in docs/schedules.md, each from a few starts in every zone.
VIXIE_READINGS = [
    "*,5 * * * *",  # '*' in a list is the whole field (was a TypeError)
    "0 0 * *,2 *",  # (was February only)
    "* * * * *,0",  # (was a TypeError)
    "5,* * * * *",  # every minute, but a fixed-time job: the field does not start with '*'
    "0 0 *,5 * 1",  # starts with '*': both day fields must match, so Mondays
    "0 0 5,* * 1",  # does not: every day of the month OR Monday, so every day
    "0 0 13 * *,3#1",
    "0 0 13 * 3#1,*",
    "0 0 * * 1,2,3#1",  # Monday, Tuesday or the first Wednesday
    "0 0 * * L5,MON",  # Monday or the last Friday (cronsim: "5L,MON")
    "0 0 * * 0,7#1",  # every Sunday
    "0 9 1,15 * 1,3#2",  # the 1st, the 15th, Mondays and the second Wednesday
]


@pytest.mark.parametrize("expression", VIXIE_READINGS)
@pytest.mark.parametrize("start", ["2026-01-01 00:00", "2026-03-28 12:00", "2026-10-24 12:30"])
def test_vixie_readings_equal_cronsims_in_every_zone(expression, start):
    theirs = cronsim_form(expression)
    parsed = CronSim(theirs, START)
    spacing = timedelta(days=1) / (len(parsed.minutes) * len(parsed.hours))
    for zone_name in ZONES:
        CASES["cron (Vixie readings)"] += 1
        instant = at_utc(start).in_zone(zone_name)
        with noted(zone_name, instant):
            check_cron_in_zone(expression, theirs, zone_name, instant, 3, spacing)


@pytest.mark.parametrize(
    "expression",
    ["5-5/0 * * * *", "*/0 * * * *", "0 0 * * MON-MON/0", "5-1 * * * *", "0 0 * * FRI-SUN", "0 0 25-5 * *"],
)
def test_zero_steps_and_downward_ranges_are_refused_by_cronsim_too(expression):
    with pytest.raises(ScheduleError):
        build_schedule(cron=expression)
    with pytest.raises(CronSimError):
        CronSim(cronsim_form(expression), START)


# --- Frequencies against their definitions ---------------------------------------------------


@st.composite
def interval_frequencies(draw) -> str:
    unit = draw(st.sampled_from("mh"))
    top = 1500 if unit == "m" else 72
    count = draw(st.one_of(st.integers(1, 12), st.integers(1, top), st.sampled_from([24, 48, 60, 1440])))
    if unit == "h":
        count = min(count, top)
    return draw(st.sampled_from(["{}{}", " {}{} ", "{} {}"])).format(count, unit)


@budget("interval")
@given(frequency=interval_frequencies(), seen=starts(), start=starts())
@example("24h", at_utc("2026-03-27 12:00"), at_utc("2026-03-28 12:00"))  # was a calendar day
def test_minute_and_hour_frequencies_are_anchor_plus_whole_steps_in_every_zone(frequency, seen, start):
    for zone_name in ZONES:
        CASES["interval"] += 1
        with noted(zone_name, start.in_zone(zone_name)):
            check_interval_in_zone(frequency, zone_name, seen.in_zone(zone_name), start.in_zone(zone_name))


def check_interval_in_zone(frequency, zone_name, seen, start):
    schedule = build_schedule(frequency=frequency, zone=zone_name)
    assert isinstance(schedule, IntervalSchedule)
    count, unit = int(frequency.strip()[:-1]), frequency.strip()[-1]
    step = timedelta(minutes=count) if unit == "m" else timedelta(hours=count)
    assert schedule.first_slot(seen) == truncate_to_minute(seen)
    anchor = truncate_to_minute(seen)

    def on_grid(slot):
        return slot >= anchor and (slot - anchor) % step == timedelta(0)

    following = schedule.next_after(start, anchor)
    assert on_grid(following) and following > start and (following == anchor or following - step <= start)
    slots = slots_of(schedule, start, start + YEAR, HEAD, anchor)
    assert slots[:1] == ([following] if following <= start + YEAR else [])
    assert all(map(on_grid, slots)) and {b - a for a, b in itertools.pairwise(slots)} <= {step}
    assert len(slots) == HEAD or not slots or slots[-1] + step > start + YEAR
    check_slot_shapes(slots)
    for change in changes_between(zone_name, start, start + YEAR):  # real time, clock changes or not
        near = slots_of(schedule, max(change - 2 * step, anchor - TINY), change + 2 * step, 8, anchor)
        assert all(map(on_grid, near)) and {b - a for a, b in itertools.pairwise(near)} <= {step}
        if anchor <= change - 2 * step:
            assert len(near) == 4  # four steps of real time hold four slots, whatever the clock did
    latest = schedule.latest_at_or_before(start, anchor)
    if start < anchor:
        assert latest is None
    else:
        assert on_grid(latest) and latest <= start < latest + step


@st.composite
def day_frequencies(draw) -> tuple[str, str | None]:
    days = draw(st.one_of(st.integers(1, 3), st.integers(1, 40)))
    any_time = st.builds("{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59))
    near_changes = st.sampled_from(["00:00", "01:30", "02:00", "02:15", "02:30", "02:59", "03:00"])
    at = draw(st.one_of(st.none(), any_time, near_changes))
    return f"{days}d", at


def wall_time_on(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """cronsim's instant for one wall time on one day (fixed-time cron semantics)."""
    noon_before = datetime.combine(day - timedelta(days=1), time(12), tzinfo=zone)
    slot = next(CronSim(f"{wall.minute} {wall.hour} {day.day} {day.month} *", noon_before)).astimezone(UTC)
    assert slot.astimezone(zone).date() == day  # no zone here skips across midnight
    return slot


@pytest.mark.slow
@budget("frequency")
@given(spec=day_frequencies(), seen=starts(), start=starts())
def test_day_frequencies_run_at_one_wall_time_every_n_calendar_days_in_every_zone(spec, seen, start):
    for zone_name in ZONES:
        CASES["frequency"] += 1
        with noted(zone_name, start.in_zone(zone_name)):
            check_day_frequency_in_zone(*spec, zone_name, seen.in_zone(zone_name), start.in_zone(zone_name))


def check_day_frequency_in_zone(frequency, at, zone_name, seen, start):
    zone = ZoneInfo(zone_name)
    schedule = build_schedule(frequency=frequency, at=at, zone=zone_name)
    assert isinstance(schedule, CalendarSchedule)
    days = int(frequency[:-1])
    anchor = truncate_to_minute(seen)  # the job's first run
    first_day = anchor.astimezone(zone).date()
    wall = time(*map(int, at.split(":"))) if at else anchor.astimezone(zone).time().replace(second=0)

    def grid_slots(from_day: date):
        """The oracle's slots on grid days from ``from_day`` on, oldest first."""
        k = max(0, -(-(from_day - first_day).days // days))
        while True:
            yield wall_time_on(first_day + timedelta(days=k * days), wall, zone)
            k += 1

    def oracle(after, until, limit):
        from_day = after.astimezone(zone).date() - timedelta(days=1)
        later = (slot for slot in grid_slots(from_day) if slot > after)
        return list(itertools.takewhile(lambda slot: slot <= until, itertools.islice(later, limit)))

    compare_year(schedule, oracle, start, anchor, zone_name, spacing=timedelta(days=days))

    # The first run: on the day first seen at the wall time if it is still to come, else on
    # the next grid day; without a time, at once.
    expected_first = oracle(anchor - TINY, anchor + 100 * timedelta(days=days), 1)[0] if at else anchor
    assert schedule.first_slot(seen) == expected_first
    latest = schedule.latest_at_or_before(start, anchor)
    earlier = oracle(start - (days + 2) * timedelta(days=1), start, days + 3)
    assert latest == (earlier[-1] if earlier else None)


# --- Lazy generation and --run-time -----------------------------------------------------------


@st.composite
def any_schedule(draw):
    kind = draw(st.sampled_from(["cron", "cron", "interval", "day"]))
    zone_name = draw(zones)
    if kind == "cron":
        expression = draw(cron_expressions())
        try:
            return build_schedule(cron=expression, zone=zone_name)
        except ScheduleError:
            return build_schedule(cron="* * * * *", zone=zone_name)
    if kind == "interval":
        return build_schedule(frequency=draw(interval_frequencies()), zone=zone_name)
    frequency, at = draw(day_frequencies())
    return build_schedule(frequency=frequency, at=at, zone=zone_name)


@budget("lazy")
@given(schedule=any_schedule(), now=instants())
def test_slots_after_is_lazy_even_ten_years_behind(schedule, now):
    CASES["lazy"] += 1
    behind = now - 10 * YEAR
    slots = schedule.slots_after(behind, truncate_to_minute(behind))  # anchors are whole minutes
    assert inspect.isgenerator(slots)
    began = clock.perf_counter()
    first = list(itertools.islice(slots, 3))
    assert clock.perf_counter() - began < 2.0, str(schedule)  # not ten years of slots
    assert first and behind < first[0]  # (a cron that matches once in 28 years may have fewer)
    check_slot_shapes(first)


def test_ten_years_of_missed_minutes_are_never_built():
    schedule = build_schedule(cron="* * * * *", zone="Europe/Berlin")
    behind = datetime(2016, 3, 27, tzinfo=UTC)
    tracemalloc.start()
    try:
        slots = schedule.slots_after(behind, behind)
        first = list(itertools.islice(slots, 5))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert first == [behind + k * MINUTE for k in range(1, 6)]
    assert peak < 1_000_000  # a day's slots at most, not 5 million of them


aware_instants = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, *map(ZoneInfo, ZONES)]),
)


@budget("round_trip")
@given(instant=aware_instants)
def test_run_time_round_trips(instant):
    CASES["round_trip"] += 1
    slot = truncate_to_minute(instant)
    assert parse_instant(format_instant(slot)) == slot
    # The same instant, to the microsecond. (Compared in UTC: Python never finds an
    # instant of a repeated hour equal to one in another zone.)
    assert parse_instant(format_instant(instant)) == instant.astimezone(UTC)
    assert format_instant(instant).endswith("+00:00")
