"""The admin's slot strip (job list) and grid (job page), and its one way of showing times:
what each slot is shown as, the pages an operator reads, and the queries they cost."""

from collections import namedtuple
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from freezegun import freeze_time

from crontabber.admin.display import GRID_SLOTS, _cell, when, when_text
from crontabber.admin.strip import BACKLOG, COALESCED, NOT_RUN, Cell, cells, recent_slots
from crontabber.models import Job, Log
from crontabber.outcomes import Outcome
from crontabber.registry import JobSpec
from crontabber.schedules import build_schedule
from tests.helpers import at, job, tick
from tests.jobs import control
from tests.test_admin import OPERATOR, client_for

Row = namedtuple(
    "Row", "id job_id slot started_at duration outcome attempt error_type since covers", defaults=(None, 1)
)
HOUR = timedelta(hours=1)
NOW = at("2026-05-01 12:30")


def spec(frequency="1h", backfill=False):
    return JobSpec(name="j", cmd="noop", schedule=build_schedule(frequency), backfill=backfill)


def attempt(slot, outcome, number=1, duration=1.0, pk=None):
    return Row(pk or int(slot.timestamp()), 1, slot, slot + timedelta(minutes=1), duration, outcome, number, "")


def states(shown):
    return [(cell.slot, cell.state) for cell in shown]


def shown_as(page, state):
    """How many slots of the page (not of its legend) are shown as ``state``."""
    return page.count(f'class="slot slot-{state}" ')


def strip_of(job_spec, row, attempts, count=24):
    return cells(job_spec, row, recent_slots(job_spec, row, NOW, count), attempts, NOW, count)


# --- what each slot is shown as (no database) -------------------------------------------------


def test_a_backfill_job_shows_its_successes_its_failed_slot_and_the_backlog_behind_it():
    first = at("2026-05-01 06:00")
    row = Job(first_run=first, next_slot=at("2026-05-01 09:00"))
    attempts = [attempt(first + k * HOUR, Outcome.SUCCESS) for k in range(3)]
    attempts.append(attempt(at("2026-05-01 09:00"), Outcome.FAILURE))
    assert states(strip_of(spec(backfill=True), row, attempts)) == [
        (at("2026-05-01 06:00"), "success"),
        (at("2026-05-01 07:00"), "success"),
        (at("2026-05-01 08:00"), "success"),
        (at("2026-05-01 09:00"), "failure"),
        (at("2026-05-01 10:00"), BACKLOG),
        (at("2026-05-01 11:00"), BACKLOG),
        (at("2026-05-01 12:00"), BACKLOG),
    ]


def test_a_job_without_backfill_shows_the_slots_it_coalesced_and_the_one_it_runs_next():
    first = at("2026-05-01 06:00")
    row = Job(first_run=first, next_slot=at("2026-05-01 10:00"))
    attempts = [attempt(first, Outcome.SUCCESS), attempt(at("2026-05-01 09:00"), Outcome.SUCCESS)]
    assert [state for _, state in states(strip_of(spec(), row, attempts))] == [
        "success",
        COALESCED,
        COALESCED,
        "success",
        COALESCED,  # 10:00 and 11:00 are due, but only the latest due slot runs
        COALESCED,
        BACKLOG,
    ]


def test_a_backfill_jobs_slots_passed_over_are_not_run_and_a_retried_slot_shows_its_latest_attempt():
    first = at("2026-05-01 09:00")
    row = Job(first_run=first, next_slot=at("2026-05-01 13:00"))
    attempts = [
        attempt(first, Outcome.FAILURE, 1),
        attempt(first, Outcome.SUCCESS, 2, pk=99),
        attempt(at("2026-05-01 12:00"), Outcome.RUNNING),
    ]
    shown = strip_of(spec(backfill=True), row, attempts)
    assert states(shown) == [
        (at("2026-05-01 09:00"), "success"),
        (at("2026-05-01 10:00"), NOT_RUN),  # marked succeeded past them, say
        (at("2026-05-01 11:00"), NOT_RUN),
        (at("2026-05-01 12:00"), "running"),
    ]
    assert shown[0].attempt.id == 99 and shown[0].attempt.attempt == 2
    assert shown[-1].duration == 29 * 60  # running since 12:01: its duration so far


def test_the_strip_holds_the_latest_slots_only_and_a_run_now_is_a_slot_of_its_own():
    row = Job(first_run=at("2026-04-01 00:00"), next_slot=at("2026-05-01 13:00"))
    forced = at("2026-05-01 11:17")
    attempts = [attempt(at("2026-05-01 10:00"), Outcome.SUCCESS), attempt(forced, Outcome.SUCCESS)]
    shown = strip_of(spec(backfill=True), row, attempts, count=4)
    assert [cell.slot for cell in shown] == [
        at("2026-05-01 10:00"),
        at("2026-05-01 11:00"),
        forced,
        at("2026-05-01 12:00"),
    ]


def test_a_job_that_never_ran_has_no_slots_and_long_schedules_walk_back_only_as_far_as_shown():
    assert recent_slots(spec(), Job(), NOW, 24) == []
    row = Job(first_run=at("2020-01-01 00:00"))
    assert len(recent_slots(spec("1m"), row, NOW, GRID_SLOTS)) == GRID_SLOTS
    assert recent_slots(spec("1d"), row, NOW, 3) == [at("2026-04-29"), at("2026-04-30"), at("2026-05-01")]


@pytest.mark.parametrize(
    "state, symbol",
    [("queued", "…"), ("success", "✓"), (BACKLOG, "○"), ("an-outcome-from-the-future", "?")],
)
def test_any_outcome_is_drawn_with_its_own_class_and_symbol_and_described_on_hover(state, symbol):
    row = None if state == BACKLOG else attempt(NOW, state, pk=7)
    html = _cell(Cell(NOW, state, row, 2.0), "UTC", "/admin/crontabber/log/")
    assert f'class="slot slot-{state}"' in html and f">{symbol}<" in html
    assert "2026-05-01 12:30 UTC" in html
    assert ('href="/admin/crontabber/log/7/change/"' in html) == (row is not None)


def test_times_are_shown_in_the_jobs_zone_and_in_utc():
    instant = at("2026-11-29 16:26")
    assert when_text(instant, "Europe/Berlin") == "2026-11-29 17:26 CET (16:26 UTC)"
    assert when_text(instant, "Asia/Tokyo") == "2026-11-30 01:26 JST (2026-11-29 16:26 UTC)"
    assert when_text(instant, "UTC") == "2026-11-29 16:26 UTC"
    assert when_text(instant, "Europe/Berlin", seconds=True) == "2026-11-29 17:26:00 CET (16:26:00 UTC)"
    assert when_text(None) == when(None) == "-"
    assert 'datetime="2026-11-29T16:26:00+00:00"' in when(instant, "Europe/Berlin")


# --- the pages ---------------------------------------------------------------------------------

REGISTRY = [
    {"name": "rollup", "cmd": "record", "frequency": "1h", "backfill": True},
    {"name": "berlin", "cmd": "boom", "frequency": "1d", "time": "03:00", "timezone": "Europe/Berlin"},
]


@pytest.fixture
def history(db, jobs):
    """rollup: 09:00 to 11:00 succeed, 12:00 fails; berlin fails every day."""
    jobs(REGISTRY)
    for hour in range(9, 13):
        if hour == 12:
            control.FAILING.add("*")
        tick(at(f"2026-05-01 {hour:02}:00"))
    return client_for(*OPERATOR)


def test_the_job_list_shows_each_jobs_latest_slots_linked_to_their_attempts(history):
    with freeze_time(at("2026-05-01 14:10")):
        page = history.get(reverse("admin:crontabber_job_changelist")).content.decode()
    failed = Log.objects.get(job__name="rollup", outcome=Outcome.FAILURE)
    assert shown_as(page, "success") >= 3
    assert f'href="/admin/crontabber/log/{failed.pk}/change/"' in page
    assert 'title="2026-05-01 12:00 UTC: failure (attempt 1, ' in page
    assert shown_as(page, "backlog") == 2  # 13:00 and 14:00 wait behind the failure
    assert "<span>2026-05-02 03:00 CEST</span> <span>(01:00 UTC)</span>" in page  # berlin's next run


def test_the_job_page_draws_durations_to_scale_and_links_the_latest_failure_with_its_error(history):
    Log.objects.filter(job__name="rollup", slot=at("2026-05-01 09:00")).update(duration=40)
    Log.objects.filter(job__name="rollup", slot=at("2026-05-01 10:00")).update(duration=10)
    with freeze_time(at("2026-05-01 14:10")):
        page = history.get(reverse("admin:crontabber_job_change", args=[job("rollup").pk])).content.decode()
    failed = Log.objects.get(job__name="rollup", outcome=Outcome.FAILURE)
    assert "longest: 40.0 s" in page
    assert 'style="height: 100.0%"' in page and 'style="height: 25.0%"' in page
    assert page.count('class="slot-column ') == 6  # 09:00 to 14:00
    assert f'<a href="/admin/crontabber/log/{failed.pk}/change/" class="latest-failure">' in page
    assert "CommandError: failing on purpose for 2026-05-01T12:00:00+00:00" in page
    assert "p.m." not in page and "a.m." not in page  # no time in Django's own format


def many_jobs(jobs, count, now):
    """``count`` hourly backfill jobs with 30 hours of attempts each."""
    jobs([{"name": f"job{i:03}", "cmd": "noop", "frequency": "1h", "backfill": True} for i in range(count)])
    first = now - 30 * HOUR
    Job.objects.bulk_create(
        Job(name=f"job{i:03}", schedule="every 1h", first_run=first, next_slot=now - HOUR, next_run=now - HOUR)
        for i in range(count)
    )
    outcomes = [Outcome.SUCCESS, Outcome.SUCCESS, Outcome.FAILURE, Outcome.SKIPPED]
    Log.objects.bulk_create(
        Log(
            job=row,
            slot=first + k * HOUR,
            started_at=first + k * HOUR,
            duration=k,
            outcome=outcomes[k % 4],
        )
        for row in Job.objects.all()
        for k in range(29)
    )


def queries_of(client, url, now):
    """The queries of one request for ``url``, after a first (which creates the control row)."""
    with freeze_time(now):
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content.decode()


@pytest.mark.django_db
def test_the_job_list_costs_the_same_queries_for_10_and_100_jobs(jobs):
    now, client, url = at("2026-05-01 12:00"), client_for(*OPERATOR), reverse("admin:crontabber_job_changelist")
    counted = {}
    for count in (10, 100):
        Job.objects.all().delete()
        many_jobs(jobs, count, now)
        counted[count], page = queries_of(client, url, now)
        assert shown_as(page, "success") == count * 11
        assert shown_as(page, "backlog") == count * 2  # the failed slot's retry is due, then the slot due now
    assert counted[10] == counted[100], counted
    print(f"job list: {counted[100]} queries for 100 jobs")


@pytest.mark.django_db
def test_a_jobs_page_costs_the_same_queries_whatever_the_number_of_jobs(jobs):
    now, client = at("2026-05-01 12:00"), client_for(*OPERATOR)
    counted = {}
    for count in (10, 100):
        Job.objects.all().delete()
        many_jobs(jobs, count, now)
        url = reverse("admin:crontabber_job_change", args=[job("job000").pk])
        counted[count], page = queries_of(client, url, now)
        assert page.count('class="slot-column ') == 31
    assert counted[10] == counted[100], counted
    print(f"job page: {counted[100]} queries with 100 jobs")


def test_every_page_shows_times_one_way_with_their_zone(history):
    pages = [
        reverse("admin:crontabber_job_changelist"),
        reverse("admin:crontabber_job_change", args=[job("berlin").pk]),
        reverse("admin:crontabber_log_changelist"),
        reverse("admin:crontabber_log_change", args=[Log.objects.filter(job__name="rollup").first().pk]),
        reverse("admin:crontabber_control_changelist"),
        reverse("admin:crontabber_control_change", args=[1]),
    ]
    for url in pages:
        with freeze_time(at("2026-05-01 14:10")):
            page = history.get(url).content.decode()
        assert '<time class="crontabber-time"' in page, url
        assert "a.m." not in page and "p.m." not in page and "midnight" not in page, url
    with freeze_time(at("2026-05-01 14:10")):
        page = history.get(reverse("admin:crontabber_job_change", args=[job("berlin").pk])).content.decode()
    assert "<span>2026-05-01 11:00 CEST</span> <span>(09:00 UTC)</span>" in page  # its first run
