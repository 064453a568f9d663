"""Operators' pages: the jobs (status, schedule, controls) and their attempts (read-only).

Nothing here runs a job: "run now" queues the job for the next tick (Job.run_requested),
and every other control is a row the runners read on each tick. Every change is recorded
as a django.contrib.admin LogEntry naming who made it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .admin_actions import JobActions
from .admin_forms import JobForm
from .health import job_health
from .models import Control, Job, Log
from .registry import RegistryError, jobs_or_none, load_jobs
from .schedule import ScheduleError, build_override

NOT_IN_REGISTRY = "not in registry"
STATUS_COLOURS = {
    "ok": "#2e7d32",
    "running": "#1565c0",
    "failing": "#c62828",
    "overdue": "#ef6c00",
    "disabled": "#757575",
    NOT_IN_REGISTRY: "#757575",
    "registry error": "#c62828",
}
PRE = '<pre style="white-space: pre-wrap; overflow-wrap: anywhere; margin: 0">{}</pre>'


def when(instant, seconds=False) -> str:
    """A compact local time for the lists, with the exact instant as its tooltip."""
    if instant is None:
        return "-"
    local = timezone.localtime(instant)
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return format_html('<span title="{}">{} {}</span>', instant.isoformat(), shown, local.tzname())


class ProblemFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("errors", "failing (errors)"),
            ("claimed", "claimed by a runner"),
            ("overridden", "overridden by an operator"),
            ("requested", "run requested"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "errors":
            return queryset.filter(error_count__gt=0)
        if value == "claimed":
            return queryset.exclude(claimed_by="")
        if value == "overridden":
            return queryset.exclude(enabled_override=None, schedule_override="")
        if value == "requested":
            return queryset.exclude(run_requested=None)
        return queryset


class JobChangeList(ChangeList):
    """Reads the registry once per page and gives each row its health verdict."""

    def get_results(self, request):
        super().get_results(request)
        self.model_admin.annotate(self.result_list)


def read_only(fieldsets, editable) -> tuple[str, ...]:
    return tuple(name for _, options in fieldsets for name in options["fields"] if name not in editable)


@admin.register(Job)
class JobAdmin(JobActions, admin.ModelAdmin):
    form = JobForm
    list_display = (
        "name",
        "status",
        "schedule_shown",
        "last_success_shown",
        "next_run_shown",
        "errors",
        "logs",
    )
    list_filter = (ProblemFilter,)
    search_fields = ("name",)
    fieldsets = [
        (None, {"fields": ["name", "status", "registry_schedule", "schedule_shown", "logs"]}),
        (
            "Operator's controls",
            {"fields": ["enabled_override", "schedule_override", "run_requested", "rerun_from", "rerun_to"]},
        ),
        (
            "State",
            {
                "fields": [
                    "first_run",
                    "last_run",
                    "last_success",
                    "last_skipped",
                    "next_slot",
                    "next_run",
                    "error_count",
                    "last_error",
                ]
            },
        ),
        ("Claim", {"fields": ["claimed_by", "claimed_at", "claim_expires", "taken_over_from"]}),
    ]
    EDITABLE = ("enabled_override", "schedule_override")
    readonly_fields = read_only(fieldsets, EDITABLE)  # all that is shown but the operator's two controls

    # --- permissions: jobs come from the registry; operators change only the controls ---

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- the verdict of each row ------------------------------------------------------

    def annotate(self, jobs) -> None:
        specs, now = jobs_or_none(), timezone.now()
        for job in jobs:
            spec = (specs or {}).get(job.name)
            job._spec = spec
            job._registry_ok = specs is not None
            job._health = job_health(spec, job, now) if spec else None

    def _annotated(self, job: Job) -> Job:
        if not hasattr(job, "_health"):
            self.annotate([job])
        return job

    def get_changelist(self, request, **kwargs):
        return JobChangeList

    @admin.display(description="status")
    def status(self, job):
        job = self._annotated(job)
        if job._health is None:
            status = NOT_IN_REGISTRY if job._registry_ok else "registry error"
        else:
            status = job._health.status
        note = ""
        if job.enabled_override is not None and job._spec is not None:
            note = " (enabled by an operator)" if job.enabled_override else " (disabled by an operator)"
        if status == "running":
            note = f" ({job.claimed_by})"
        return format_html(
            '<strong class="job-status status-{}" style="color: {}">{}</strong>{}',
            status.replace(" ", "-"),
            STATUS_COLOURS.get(status, "inherit"),
            status,
            note,
        )

    @admin.display(description="registry schedule")
    def registry_schedule(self, job):
        job = self._annotated(job)
        return job._spec.schedule.description if job._spec else "-"

    @admin.display(description="schedule")
    def schedule_shown(self, job):
        job = self._annotated(job)
        spec = job._spec
        if spec is None:
            shown = job.schedule or "-"
            return (
                format_html("{} <em>(override {})</em>", shown, job.schedule_override)
                if job.schedule_override
                else shown
            )
        if not job.schedule_override:
            return spec.schedule.description
        try:
            overridden = build_override(job.schedule_override, spec.zone).description
        except ScheduleError as error:
            return format_html(
                '{} <em style="color: {}">(override {!r} ignored: {})</em>',
                spec.schedule.description,
                STATUS_COLOURS["failing"],
                job.schedule_override,
                error,
            )
        return format_html(
            '<strong class="overridden" title="registry: {}">{}</strong> <em>(overridden; registry: {})</em>',
            spec.schedule.description,
            overridden,
            spec.schedule.description,
        )

    @admin.display(description="last success", ordering="last_success")
    def last_success_shown(self, job):
        return when(job.last_success)

    @admin.display(description="next run", ordering="next_run")
    def next_run_shown(self, job):
        job = self._annotated(job)
        shown = when(job.next_run)
        if job._health is not None and job.next_run and job.schedule != job._health.schedule:
            shown = format_html("{} <em>(the new schedule applies from the next tick)</em>", shown)
        if job.run_requested:
            return format_html(
                "<strong>run requested</strong> for the next tick (asked {})<br>{}",
                when(job.run_requested),
                shown,
            )
        return shown

    @admin.display(description="errors", ordering="error_count")
    def errors(self, job):
        if not job.error_count:
            return "0"
        last = job.last_error if len(job.last_error) <= 40 else job.last_error[:39] + "…"
        return format_html('<span title="{}">{}: {}</span>', job.last_error, job.error_count, last)

    @admin.display(description="logs")
    def logs(self, job):
        url = reverse("admin:crontabber_log_changelist") + "?" + urlencode({"job__id__exact": job.pk})
        return format_html('<a href="{}" class="job-logs">recent logs</a>', url)

    # --- the change form: only the two overrides are editable ---------------------------

    def save_model(self, request, obj, form, change):
        # Only the operator's fields: a runner may be writing the job's state meanwhile.
        fields = [name for name in self.EDITABLE if name in form.changed_data]
        if fields:
            obj.save(update_fields=fields)

    def construct_change_message(self, request, form, formsets, add=False):
        shown = {None: "registry decides", True: "enabled", False: "disabled"}
        changes = []
        if "enabled_override" in form.changed_data:
            changes.append(
                f"enabled: {shown[form.initial.get('enabled_override')]} -> "
                f"{shown[form.cleaned_data['enabled_override']]}"
            )
        if "schedule_override" in form.changed_data:
            before = form.initial.get("schedule_override") or "none"
            after = form.cleaned_data["schedule_override"] or "none (the registry's schedule)"
            changes.append(f"schedule override: {before} -> {after}")
        return "; ".join(changes) or "No fields changed."

    # --- the job list: hold banner ---------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        try:
            load_jobs()
        except RegistryError as error:
            self.message_user(request, f"{error}: statuses are unknown until it is fixed", messages.ERROR)
        extra_context = {
            **(extra_context or {}),
            "control": Control.load(),
            "can_hold": self.can_hold(request),
        }
        return super().changelist_view(request, extra_context)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows nobody adds, changes or deletes here: the runners write them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
        "host",
    )
    list_display_links = ("started",)
    list_filter = ("outcome", "job")
    search_fields = ("job__name", "error_type", "error_value")
    list_select_related = ("job",)
    show_full_result_count = False  # no COUNT(*) of a large table on every page
    show_facets = admin.ShowFacets.NEVER  # nor a COUNT per filter choice
    fields = (
        "job_link",
        "slot",
        "started_at",
        "duration_shown",
        "outcome_shown",
        "attempt",
        "host",
        "pid",
        "error_type",
        "error_value",
        "traceback_shown",
        "output_shown",
    )
    readonly_fields = fields

    @admin.display(description="started", ordering="started_at")
    def started(self, log):
        return when(log.started_at, seconds=True)

    @admin.display(description="slot", ordering="slot")
    def slot_shown(self, log):
        return when(log.slot)

    @admin.display(description="job", ordering="job__name")
    def job_link(self, log):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:crontabber_job_change", args=[log.job_id]), log.job.name
        )

    @admin.display(description="outcome", ordering="outcome")
    def outcome_shown(self, log):
        colour = {"success": "#2e7d32", "failure": "#c62828", "timeout": "#c62828", "running": "#1565c0"}
        return format_html(
            '<strong class="outcome-{}" style="color: {}">{}</strong>',
            log.outcome,
            colour.get(log.outcome, "inherit"),
            log.outcome,
        )

    @admin.display(description="duration", ordering="duration")
    def duration_shown(self, log):
        return f"{log.duration:.2f} s"

    @admin.display(description="error")
    def error(self, log):
        text = f"{log.error_type}: {log.error_value}" if log.error_type else ""
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

    list_display = ("__str__", "held_by", "held_since", "last_tick", "last_tick_seconds", "last_tick_by", "last_purge")
    fields = ("hold_all", "held_by", "held_since", "last_tick", "last_tick_seconds", "last_tick_by", "last_purge")
    readonly_fields = fields
