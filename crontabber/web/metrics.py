"""Prometheus metrics: GET /crontabber/metrics (views.py) and `cronlist --format=prometheus`
(for node_exporter's textfile collector).

``read`` reads the rows, four queries whatever the number of jobs (the jobs, the control
row, attempts by job and outcome, recent durations and start lags by job and bucket); ``families`` turns
them into metric families without touching the database; ``exposition`` puts them through
a custom collector on a private CollectorRegistry (no global registry state).

prometheus-client is an optional extra (``pip install 'django-crontabber[metrics]'``): without it
this module imports, ``available()`` is False and ``exposition`` raises Unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from ..engine import plan
from ..models import Control, Job, Log
from ..outcomes import SPANS, Outcome
from ..registry import JobSpec, effective_spec, load_jobs

try:
    import prometheus_client
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
except ImportError:  # the optional extra is not installed
    prometheus_client = None

MISSING = "metrics need prometheus-client: pip install 'django-crontabber[metrics]'"
BACKLOG_CAP = 100_000  # a backfill job's backlog is counted up to this many slots
DURATION_WINDOW = timedelta(hours=24)  # the duration histogram's attempts: those started this recently
BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)  # seconds; +Inf is added
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0)  # seconds; +Inf is added


class Unavailable(RuntimeError):
    """prometheus-client is not installed."""


def available() -> bool:
    return prometheus_client is not None


@dataclass
class Durations:
    buckets: list[int]  # cumulative: attempts at or under each of BUCKETS
    count: int = 0
    total: float = 0.0


@dataclass
class Snapshot:
    """Everything the metrics show, read at ``now``."""

    now: datetime
    specs: list[JobSpec]
    rows: dict[str, Job]  # by name
    control: Control | None
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)  # (name, outcome) -> attempts in the Log
    passed: dict[tuple[str, str], int] = field(default_factory=dict)  # (name, missed/paused) -> slots in the Log
    durations: dict[str, Durations] = field(default_factory=dict)  # by name
    lags: dict[str, Durations] = field(default_factory=dict)  # on-time start lags, by name


def read(now: datetime | None = None, names=None) -> Snapshot:
    """The rows the metrics are made of, in four queries whatever the number of jobs."""
    now = now or timezone.now()
    specs = load_jobs(names)
    rows = {job.name: job for job in Job.objects.all()}
    by_id = {job.pk: job.name for job in rows.values()}
    control = Control.objects.filter(pk=1).first()  # read only: never created here
    return Snapshot(now, specs, rows, control, *_attempts_read(by_id), *_durations_read(by_id, now))


def _attempts_read(by_id: dict[int, str]) -> tuple[dict, dict]:
    """Attempts in the Log by (job, outcome), and the slots of its missed and paused spans:
    one GROUP BY."""
    counted = Log.objects.order_by().values("job_id", "outcome").annotate(n=Count("pk"), slots=Sum("covers"))
    attempts, passed = {}, {}
    for row in counted:
        if row["job_id"] in by_id:
            found = passed if row["outcome"] in SPANS else attempts
            found[(by_id[row["job_id"]], row["outcome"])] = row["slots"] if row["outcome"] in SPANS else row["n"]
    return attempts, passed


def _durations_read(by_id: dict[int, str], now: datetime) -> tuple[dict[str, Durations], dict[str, Durations]]:
    """Each job's finished attempts of the last DURATION_WINDOW by duration bucket, and
    their start lags (of on-time slots) by lag bucket: one GROUP BY with a conditional
    count per bucket."""
    recent = Log.objects.order_by().filter(started_at__gte=now - DURATION_WINDOW)
    recent = recent.exclude(outcome__in=[Outcome.RUNNING, *SPANS])
    buckets = {f"le{i}": Count("pk", filter=Q(duration__lte=bound)) for i, bound in enumerate(BUCKETS)}
    buckets |= {f"lag{i}": Count("pk", filter=Q(start_lag__lte=bound)) for i, bound in enumerate(LAG_BUCKETS)}
    counted = recent.values("job_id").annotate(
        n=Count("pk"), total=Sum("duration"), lags=Count("start_lag"), lag_total=Sum("start_lag"), **buckets
    )
    durations, lags = {}, {}
    for row in counted:
        if row["job_id"] in by_id:
            name = by_id[row["job_id"]]
            durations[name] = Durations([row[f"le{i}"] for i in range(len(BUCKETS))], row["n"], row["total"] or 0.0)
            lags[name] = Durations(
                [row[f"lag{i}"] for i in range(len(LAG_BUCKETS))], row["lags"], row["lag_total"] or 0.0
            )
    return durations, lags


def backlog(spec: JobSpec, job: Job | None, now: datetime) -> int:
    """Due slots not yet run: for a backfill job, its slots from next_slot through now
    (at most BACKLOG_CAP); 0 or 1 for another job, which runs once for however many are due."""
    if job is None or job.next_slot is None or job.next_slot > now:
        return 0
    return plan.backlog(spec, job.next_slot, now, job.anchor(now), most=BACKLOG_CAP)


def _seconds(instant: datetime | None) -> float | None:
    return instant.timestamp() if instant else None


JOB_GAUGES = (
    # (name, help, value of (spec, job, now); None: no sample)
    ("crontabber_job_enabled", "1 if the job is enabled (registry and admin), else 0.", lambda s, j, now: s.enabled),
    (
        "crontabber_job_last_success_timestamp_seconds",
        "The slot of the job's latest success (Unix time).",
        lambda s, j, now: _seconds(j and j.last_success),
    ),
    (
        "crontabber_job_last_attempt_timestamp_seconds",
        "When the job's latest attempt started (Unix time).",
        lambda s, j, now: _seconds(j and j.last_run),
    ),
    (
        "crontabber_job_next_run_timestamp_seconds",
        "When the job is next due (Unix time); later than its next slot while backing off.",
        lambda s, j, now: _seconds(j and j.next_run),
    ),
    (
        "crontabber_job_consecutive_errors",
        "Failed attempts in a row (0 after a success).",
        lambda s, j, now: j.error_count if j else 0,
    ),
    (
        "crontabber_job_running",
        "1 while a runner holds a live claim on the job, else 0.",
        lambda s, j, now: j is not None and j.is_claimed(now),
    ),
    (
        "crontabber_job_backlog_slots",
        f"Due slots not yet run (a backfill job's counted up to {BACKLOG_CAP}; 0 or 1 for another job).",
        lambda s, j, now: backlog(s, j, now),
    ),
)


def _job_gauges(snapshot: Snapshot, specs: list[JobSpec]):
    for name, documentation, value in JOB_GAUGES:
        family = GaugeMetricFamily(name, documentation, labels=["job"])
        for spec in specs:
            sample = value(spec, snapshot.rows.get(spec.name), snapshot.now)
            if sample is not None:
                family.add_metric([spec.name], float(sample))
        yield family


def _attempts(snapshot: Snapshot, specs: list[JobSpec]):
    family = CounterMetricFamily(
        "crontabber_job_attempts",
        "Attempts recorded in the Log, by outcome. Old rows are purged "
        "(CRONTABBER_LOG_RETENTION_DAYS), which Prometheus sees as a counter reset.",
        labels=["job", "outcome"],
    )
    for spec in specs:
        for outcome in Outcome.values:
            if outcome not in SPANS:
                family.add_metric([spec.name, outcome], snapshot.attempts.get((spec.name, outcome), 0))
    return family


def _passed(snapshot: Snapshot, specs: list[JobSpec]):
    family = CounterMetricFamily(
        "crontabber_job_slots_not_run",
        "Slots recorded in the Log as not run: missed (past the starting deadline) or paused (due while the job "
        "was disabled or held). Old rows are purged, as for the attempts.",
        labels=["job", "outcome"],
    )
    for spec in specs:
        for outcome in sorted(SPANS):
            family.add_metric([spec.name, outcome], snapshot.passed.get((spec.name, outcome), 0))
    return family


def _durations(snapshot: Snapshot, specs: list[JobSpec]):
    hours = int(DURATION_WINDOW.total_seconds() // 3600)
    family = HistogramMetricFamily(
        "crontabber_job_duration_seconds",
        f"Durations of the job's attempts that started in the last {hours} h (a window, not a running total).",
        labels=["job"],
    )
    _histogram(family, snapshot.durations, specs, BUCKETS)
    return family


def _lags(snapshot: Snapshot, specs: list[JobSpec]):
    hours = int(DURATION_WINDOW.total_seconds() // 3600)
    family = HistogramMetricFamily(
        "crontabber_start_lag_seconds",
        f"From each on-time slot to its attempt's start, of the attempts that started in the last {hours} h "
        "(a window, not a running total; a backlog's older slots, retries and re-runs are not counted).",
        labels=["job"],
    )
    _histogram(family, snapshot.lags, specs, LAG_BUCKETS)
    return family


def _histogram(family, seen_by_job: dict[str, Durations], specs: list[JobSpec], bounds: tuple[float, ...]) -> None:
    for spec in specs:
        seen = seen_by_job.get(spec.name) or Durations(buckets=[0] * len(bounds))
        buckets = [(str(bound), count) for bound, count in zip(bounds, seen.buckets)]
        family.add_metric([spec.name], [*buckets, ("+Inf", seen.count)], sum_value=seen.total)


def _tick(snapshot: Snapshot):
    control = snapshot.control
    last_tick = GaugeMetricFamily(
        "crontabber_last_tick_timestamp_seconds", "When a runner last ended a tick (Unix time); absent: never."
    )
    if control is not None and control.last_tick:
        last_tick.add_metric([], control.last_tick.timestamp())
    failed = bool(control and control.last_tick_error)
    yield last_tick
    took = GaugeMetricFamily("crontabber_last_tick_duration_seconds", "How long the last tick took; absent: never.")
    if control is not None and control.last_tick_seconds is not None:
        took.add_metric([], control.last_tick_seconds)
    yield took
    yield GaugeMetricFamily("crontabber_last_tick_failed", "1 if the last tick ended in an error, else 0.", failed)
    held = bool(control and control.hold_all)
    yield GaugeMetricFamily("crontabber_hold_all", "1 while an operator holds every job, else 0.", held)


def families(snapshot: Snapshot) -> list:
    """The metric families of a snapshot (pure: no query)."""
    specs = [effective_spec(spec, snapshot.rows.get(spec.name)) for spec in snapshot.specs]
    return [
        *_job_gauges(snapshot, specs),
        _attempts(snapshot, specs),
        _passed(snapshot, specs),
        _durations(snapshot, specs),
        _lags(snapshot, specs),
        *_tick(snapshot),
    ]


class SnapshotCollector:
    """A prometheus_client collector of one snapshot's families."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot

    def collect(self):
        return iter(families(self.snapshot))


def exposition(now: datetime | None = None, names=None) -> bytes:
    """The text exposition format (what Prometheus scrapes, what node_exporter's textfile
    collector reads) of every job's metrics."""
    if not available():
        raise Unavailable(MISSING)
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(read(now, names)))
    return prometheus_client.generate_latest(registry)


def content_type() -> str:
    return prometheus_client.CONTENT_TYPE_LATEST
