"""benchmarks/side_by_side.py without its 20-minute run: its options, how it tells a task's
slot, its percentiles and its report."""

import datetime as dt
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
UTC = dt.UTC


@pytest.fixture
def side_by_side(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as the script runs: its folder first
    import side_by_side

    return side_by_side


def test_it_measures_the_tree_given_and_writes_its_own_results_file(side_by_side):
    args = side_by_side.parse(["--root", "/elsewhere", "--no-write"])
    assert args.root == Path("/elsewhere")
    assert args.no_write
    assert side_by_side.parse([]).output == BENCHMARKS / "results-side-by-side.md"


def test_a_slot_is_the_run_time_crontabber_passes_or_the_minute_a_peer_enqueued_it(side_by_side):
    enqueued = dt.datetime(2026, 12, 8, 0, 3, 14, 500, tzinfo=UTC)
    told = {"args": [], "kwargs": {"run_time": "2026-12-08T00:01:00+00:00"}}
    assert side_by_side.slot_of("crontabber", told, enqueued) == dt.datetime(2026, 12, 8, 0, 1, tzinfo=UTC)
    for peer in ("django-periodic-tasks", "django-crontask"):
        assert side_by_side.slot_of(peer, {"args": [], "kwargs": {}}, enqueued) == dt.datetime(
            2026, 12, 8, 0, 3, tzinfo=UTC
        )


def test_the_minutes_counted_start_at_the_next_boundary_or_on_one(side_by_side):
    on = dt.datetime(2026, 12, 8, 0, 5, tzinfo=UTC)
    assert side_by_side.minutes_from(on, 2) == [on, on + dt.timedelta(minutes=1)]
    assert side_by_side.minutes_from(on + dt.timedelta(seconds=1), 1) == [on + dt.timedelta(minutes=1)]


def test_percentiles_are_nearest_rank_so_p99_of_a_few_slots_is_the_largest(side_by_side):
    assert side_by_side.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert side_by_side.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 99) == 5.0
    assert side_by_side.percentile([], 50) != side_by_side.percentile([], 50)  # NaN: nothing ran


def test_the_report_gives_each_scheduler_its_figures(side_by_side):
    figures = {
        "queue_lags": [0.1] * 5, "lags": [0.2, 0.4, 0.3, 0.5, 0.9], "lag_slots": 5, "second": "running",
        "idle_cpu_ms_min": 1.25, "busy_cpu_ms_min": 30.0, "down": 3, "down_run": 3, "two": 3, "two_once": 3,
        "two_twice": 0,
    }  # fmt: skip
    never = figures | {"queue_lags": [], "lags": [], "down_run": 0, "two_once": 2, "second": "exited (0)"}
    lines = side_by_side.report({"crontabber": figures, "django-crontask": never}, ["# title"], "Django 6.1.3")
    rows = {line.split(" | ")[0]: line for line in lines if line.startswith("| ")}
    assert rows["| crontabber"] == (
        "| crontabber | 0.10 / 0.10 | 0.40 / 0.90 | 5 of 5 | 1.2 | 30.0 | 3 of 3 | "
        "0 of 3 (3 once, 0 not run) | running |"
    )
    assert rows["| django-crontask"].startswith("| django-crontask | — / — | — / — | 0 of 5 |")
    assert rows["| django-crontask"].endswith("| 0 of 3 | 0 of 3 (2 once, 1 not run) | exited (0) |")
    assert lines[0] == "# title"
