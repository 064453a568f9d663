"""How the admin shows times and slots: one way for every time (``when``), the job list's
slot strip and the job page's grid (server-rendered HTML; the styles are in
templates/admin/crontabber/slots_style.html, light and dark)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .. import conf
from ..models import Log, ScheduleChange
from ..outcomes import Outcome
from ..registry import effective_spec
from .strip import BACKLOG, COALESCED, NOT_RUN, Cell, cells, recent_slots

GRID_SLOTS = 100  # the job page's grid
# A state's symbol and what it means (never colour alone); an outcome not listed shows "?".
STATES = {
    Outcome.SUCCESS: ("✓", "success"),
    Outcome.FAILURE: ("✗", "failure"),
    Outcome.TIMEOUT: ("◷", "timeout"),
    Outcome.SKIPPED: ("↷", "skipped: the command had nothing to do"),
    Outcome.INTERRUPTED: ("⊘", "interrupted: the slot runs again"),
    Outcome.RUNNING: ("▶", "running"),
    "queued": ("…", "queued for a worker"),
    BACKLOG: ("○", "backlog: due, not run yet"),
    COALESCED: ("·", "coalesced: not run, a later slot ran instead"),
    NOT_RUN: ("−", "not run: passed over (marked succeeded or reset)"),
}
GREEN, BLUE, RED, ORANGE, GREY = (
    # Legible on the admin's light and dark themes (light-dark() follows its color-scheme).
    "light-dark(#2e7d32, #66bb6a)",
    "light-dark(#1565c0, #64b5f6)",
    "light-dark(#c62828, #ef5350)",
    "light-dark(#ef6c00, #ffa726)",
    "light-dark(#757575, #bdbdbd)",
)
ATTEMPT_FIELDS = ("id", "job_id", "slot", "started_at", "duration", "outcome", "attempt", "error_type")


PRE = '<pre style="white-space: pre-wrap; overflow-wrap: anywhere; margin: 0">{}</pre>'

# --- times --------------------------------------------------------------------------------


def _shown(instant: datetime, zone: str | None, seconds: bool) -> tuple[str, str]:
    """(the instant in ``zone``, TIME_ZONE when none; the same in UTC, '' when that is the zone)."""
    clock = "%H:%M:%S" if seconds else "%H:%M"
    local, utc = instant.astimezone(ZoneInfo(zone or conf.default_zone())), instant.astimezone(UTC)
    shown = f"{local.strftime('%Y-%m-%d ' + clock)} {local.tzname()}"
    if not local.utcoffset():
        return shown, ""
    return shown, f"({utc.strftime(clock if local.date() == utc.date() else '%Y-%m-%d ' + clock)} UTC)"


def when_text(instant: datetime | None, zone: str | None = None, seconds: bool = False) -> str:
    """An instant in the job's ``zone`` and in UTC: '2026-11-29 17:26 CET (16:26 UTC)', or
    '2026-11-29 16:26 UTC' when the zone is UTC."""
    return "-" if instant is None else " ".join(part for part in _shown(instant, zone, seconds) if part)


def when(instant: datetime | None, zone: str | None = None, seconds: bool = False) -> str:
    """``when_text`` as HTML, the exact instant on hover: every time the admin shows."""
    if instant is None:
        return "-"
    exact = instant.astimezone(UTC).isoformat()
    local, utc = _shown(instant, zone, seconds)
    return format_html(
        '<time class="crontabber-time" datetime="{}" title="{}"><span>{}</span>{}</time>',
        exact,
        exact,
        local,
        format_html(" <span>{}</span>", utc) if utc else "",
    )


def time_field(field: str, description: str, seconds: bool = False):
    """A display method for the datetime ``field``, shown as every time in the admin is:
    in the zone of the row's job (the admin's ``zone(obj)``) and in UTC."""

    @admin.display(description=description, ordering=field)
    def shown(self, obj):
        return when(getattr(obj, field), self.zone(obj), seconds)

    return shown


def zone_of(spec) -> str | None:
    return spec.zone if spec is not None else None


# --- the slots of a page's jobs, in one query -----------------------------------------------


def attach_cells(jobs, now: datetime, count: int) -> None:
    """Give each job (annotated with its ``_spec``) ``_cells``: its last ``count`` slots.
    One query for all of them, whatever their number."""
    shown = {}  # job -> (its spec as operators changed it, its schedule's latest slots)
    for job in jobs:
        spec = effective_spec(job._spec, job) if job._spec is not None else None
        slots = slots_in_force(spec, job, now, count) if spec is not None else []
        if slots:
            shown[job] = spec, slots
    attempts = {}
    starts = {job.pk: slots[0] for job, (_, slots) in shown.items()}
    for row in Log.objects.at_slots_since(starts).values_list(*ATTEMPT_FIELDS, named=True):
        attempts.setdefault(row.job_id, []).append(row)
    for job in jobs:
        spec, slots = shown.get(job, (None, []))
        job._cells = cells(spec, job, slots, attempts.get(job.pk, []), now, count) if slots else []


def slots_in_force(spec, job, now: datetime, count: int) -> list[datetime]:
    """The job's latest slots of the schedule in force at each time: the changes are read
    only while the strip reaches back before the latest one."""
    slots = recent_slots(spec, job, now, count)
    if slots and job.schedule_changed and job.schedule_changed > slots[0]:
        slots = recent_slots(ScheduleChange.objects.in_force(job, spec, job.first_run), job, now, count)
    return slots


def latest_failure(job):
    """The job's latest failed or timed-out attempt, or None."""
    return job.logs.filter(outcome__in=[Outcome.FAILURE, Outcome.TIMEOUT]).first()


# --- the strip and the grid ----------------------------------------------------------------


def describe(cell: Cell, zone: str | None) -> str:
    """The hover text of a cell: its slot and what came of it."""
    _, meaning = STATES.get(cell.state, ("?", cell.state))
    text = f"{when_text(cell.slot, zone)}: {meaning}"
    row = cell.attempt
    if row is not None:
        text += f" (attempt {row.attempt}, {cell.duration:.1f} s)" + (f": {row.error_type}" if row.error_type else "")
    return text


def _cell(cell: Cell, zone: str | None, url_prefix: str, height: float | None = None) -> str:
    """One slot: a symbol (the strip's), or with ``height`` (percent) a column whose bar
    is its duration (the grid's). A link to its latest attempt, when there is one."""
    symbol, _ = STATES.get(cell.state, ("?", cell.state))
    state, title = cell.state.replace(" ", "-"), describe(cell, zone)
    kind, content = "slot", symbol
    if height is not None:
        kind = "slot-column"
        content = format_html(
            '<span class="slot-bar-area"><span class="slot-bar" style="height: {}%"></span></span>'
            '<span class="slot slot-{}">{}</span>',
            f"{height:.1f}",
            state,
            symbol,
        )
    if cell.attempt is None:
        return format_html('<span class="{} slot-{}" title="{}">{}</span>', kind, state, title, content)
    return format_html(
        '<a class="{} slot-{}" href="{}{}/change/" title="{}">{}</a>',
        kind,
        state,
        url_prefix,
        cell.attempt.id,
        title,
        content,
    )


def _log_prefix() -> str:
    return reverse("admin:crontabber_log_changelist")


def _newest_first(items) -> str:
    # Shown oldest left by `flex-direction: row-reverse`, which also scrolls a strip too
    # wide for the screen to its newest end.
    return format_html_join("", "{}", ((item,) for item in reversed(items)))


def strip(job) -> str:
    """The job list's row of the job's latest slots, oldest left."""
    if not getattr(job, "_cells", None):
        return format_html('<span class="slot-none">{}</span>', "no slots yet" if job._spec else "-")
    prefix, zone = _log_prefix(), zone_of(job._spec)
    return format_html('<div class="slot-strip">{}</div>', _newest_first([_cell(c, zone, prefix) for c in job._cells]))


def grid(job) -> str:
    """The job page's grid: its latest slots as columns, each bar's height its duration to
    scale (the longest attempt's is the full height), the outcome's symbol beneath."""
    if not getattr(job, "_cells", None):
        return "no slots yet"
    prefix, zone = _log_prefix(), zone_of(job._spec)
    longest = max((c.duration for c in job._cells if c.attempt is not None), default=0.0)
    columns = [
        _cell(c, zone, prefix, 100 * c.duration / longest if longest and c.attempt is not None else 0)
        for c in job._cells
    ]
    return format_html(
        '<div class="slot-grid"><div class="slot-grid-scale">longest: {} s</div><div class="slot-grid-columns">{}</div>'
        '<div class="slot-grid-axis"><span>{}</span><span>{} slots</span><span>{}</span></div></div>{}',
        f"{longest:.1f}",
        _newest_first(columns),
        when_text(job._cells[0].slot, zone),
        len(job._cells),
        when_text(job._cells[-1].slot, zone),
        legend(),
    )


def legend() -> str:
    """What each symbol means, as the strip and grid use them."""
    return format_html(
        '<div class="slot-legend">{}</div>',
        format_html_join(
            "",
            '<span><span class="slot slot-{}">{}</span> {}</span>',
            ((state.replace(" ", "-"), symbol, meaning.split(":")[0]) for state, (symbol, meaning) in STATES.items()),
        ),
    )
