"""The attempts (Log rows) and the control row: read-only pages, the runners' record."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.urls import reverse
from django.utils.html import format_html

from ..models import Control, Log
from ..registry import jobs_or_none
from ..words import plural, took
from .display import BLUE, GREEN, PRE, RED, time_field, when, zone_of


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows nobody adds, changes or deletes here: the runners write them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LogChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        specs = jobs_or_none() or {}
        for log in self.result_list:
            log._zone = zone_of(specs.get(log.job.name))


@admin.register(Log)
class LogAdmin(ReadOnlyAdmin):
    """Read-only: the rows are the runners' record of what happened. Nobody adds, edits or
    deletes them here (not even superusers): a deleted `running` row would make its
    runner fail to record the attempt's end, and old rows are purged by the runners
    after CRONTABBER_LOG_RETENTION_DAYS."""

    list_display = (
        "started",
        "job_link",
        "slot_shown",
        "outcome_shown",
        "attempt",
        "duration_shown",
        "error",
        "ran_on",
    )
    list_display_links = ("started",)
    list_filter = ("outcome", "job")
    search_fields = ("job__name", "error_type", "error_value", "result_id")
    list_select_related = ("job",)
    show_full_result_count = False  # no COUNT(*) of a large table on every page
    show_facets = admin.ShowFacets.NEVER  # nor a COUNT per filter choice
    fields = (
        "job_link",
        "slot_shown",
        "started",
        "start_lag_shown",
        "duration_shown",
        "outcome_shown",
        "attempt",
        "host",
        "pid",
        "backend",
        "result_id",
        "error_type",
        "error_value",
        "traceback_shown",
        "output_shown",
    )
    readonly_fields = fields
    started = time_field("started_at", "started", seconds=True)

    @admin.display(description="start lag")
    def start_lag_shown(self, log):
        if log.start_lag is None:
            return "- (not an on-time slot: a backlog's, a retry, a re-run or a forced run)"
        return f"{took(log.start_lag)} after its slot"

    @admin.display(description="ran on")
    def ran_on(self, log):
        """The host of the runner, or the task backend and the result id (docs/tasks.md)."""
        return f"{log.backend} ({log.result_id})" if log.backend else log.host

    @admin.display(description="slot", ordering="slot")
    def slot_shown(self, log):
        """Its slot; for a row of several slots (missed, paused), from the oldest to the newest."""
        slot = when(log.slot, self.zone(log))
        if log.since is None or log.covers == 1:
            return slot
        return format_html("{} to {} ({})", when(log.since, self.zone(log)), slot, plural(log.covers, "slot"))

    def get_changelist(self, request, **kwargs):
        return LogChangeList

    def zone(self, log: Log) -> str | None:
        """The zone of the row's job (the registry read once per page: LogChangeList)."""
        if not hasattr(log, "_zone"):
            log._zone = zone_of((jobs_or_none() or {}).get(log.job.name))
        return log._zone

    @admin.display(description="job", ordering="job__name")
    def job_link(self, log):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:crontabber_job_change", args=[log.job_id]), log.job.name
        )

    @admin.display(description="outcome", ordering="outcome")
    def outcome_shown(self, log):
        colour = {"success": GREEN, "failure": RED, "timeout": RED, "running": BLUE}
        return format_html(
            '<strong class="outcome-{}" style="color: {}">{}</strong>',
            log.outcome,
            colour.get(log.outcome, "inherit"),
            log.outcome,
        )

    @admin.display(description="duration", ordering="duration")
    def duration_shown(self, log):
        return took(log.duration)

    @admin.display(description="error")
    def error(self, log):
        text = f"{log.error_type}: {log.error_value}" if log.error_type else log.error_value
        return text if len(text) <= 100 else text[:99] + "…"

    @admin.display(description="traceback")
    def traceback_shown(self, log):
        return format_html(PRE, log.traceback) if log.traceback else "-"

    @admin.display(description="output (tail)")
    def output_shown(self, log):
        return format_html(PRE, log.output) if log.output else "-"


@admin.register(Control)
class ControlAdmin(ReadOnlyAdmin):
    """The shared switches, read-only: hold and release from the job list. Its History
    lists every hold and release, with who and when."""

    list_display = (
        "__str__",
        "held_by",
        "held_since_shown",
        "last_tick_shown",
        "last_tick_took",
        "last_tick_by",
        "last_purge_shown",
    )
    fields = ("hold_all", *list_display[1:])
    readonly_fields = fields
    held_since_shown = time_field("held_since", "held since", seconds=True)
    last_tick_shown = time_field("last_tick", "last tick", seconds=True)
    last_purge_shown = time_field("last_purge", "last purge", seconds=True)

    @admin.display(description="last tick took", ordering="last_tick_seconds")
    def last_tick_took(self, control: Control) -> str:
        return "-" if control.last_tick_seconds is None else took(control.last_tick_seconds)

    def zone(self, control: Control) -> None:
        return None  # no job's: TIME_ZONE
