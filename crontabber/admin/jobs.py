"""Operators' pages: the jobs (status, latest slots, schedule, controls); their attempts
and the control row are logs.py's, shown read-only.

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

from .. import conf
from ..models import Control, Job
from ..outcomes import Outcome
from ..registry import RegistryError, jobs_or_none, load_jobs
from ..schedules import ScheduleError, build_override
from ..web.health import job_health, queued_of
from .actions import JobActions
from .display import (
    BLUE,
    GREEN,
    GREY,
    GRID_SLOTS,
    ORANGE,
    PRE,
    RED,
    attach_cells,
    grid,
    latest_failure,
    legend,
    strip,
    time_field,
    when,
    zone_of,
)
from .forms import JobForm

NOT_IN_REGISTRY = "not in registry"
STATUS_COLOURS = {
    "ok": GREEN,
    "running": BLUE,
    "queued": BLUE,
    "stuck": RED,
    "failing": RED,
    "overdue": ORANGE,
    "disabled": GREY,
    NOT_IN_REGISTRY: GREY,
    "registry error": RED,
}


def strip_length() -> int:
    return max(1, min(conf.get("CRONTABBER_ADMIN_STRIP_SLOTS"), GRID_SLOTS))


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
    """Reads the registry once per page and gives each row its health verdict and its
    latest slots (one query for the whole page)."""

    def get_results(self, request):
        super().get_results(request)
        self.model_admin.annotate(self.result_list, strip_length())


def read_only(fieldsets, editable) -> tuple[str, ...]:
    return tuple(name for _, options in fieldsets for name in options["fields"] if name not in editable)


@admin.register(Job)
class JobAdmin(JobActions, admin.ModelAdmin):
    form = JobForm
    list_display = (
        "name",
        "status",
        "slot_strip",
        "schedule_shown",
        "last_success_shown",
        "next_run_shown",
        "errors",
    )
    list_filter = (ProblemFilter,)
    search_fields = ("name",)
    fieldsets = [
        (None, {"fields": ["name", "status", "registry_schedule", "schedule_shown", "logs"]}),
        ("Latest slots", {"fields": ["slot_grid", "latest_failure_shown"]}),
        (
            "Operator's controls",
            {
                "fields": [
                    "enabled_override",
                    "schedule_override",
                    "run_requested_shown",
                    "rerun_from_shown",
                    "rerun_to_shown",
                ]
            },
        ),
        (
            "State",
            {
                "fields": [
                    "first_run_shown",
                    "last_run_shown",
                    "last_success_shown",
                    "last_skipped_shown",
                    "next_slot_shown",
                    "next_run_shown",
                    "error_count",
                    "last_error",
                ]
            },
        ),
        ("Claim", {"fields": ["claimed_by", "claimed_at_shown", "claim_expires_shown", "taken_over_from"]}),
    ]
    EDITABLE = ("enabled_override", "schedule_override")
    readonly_fields = read_only(fieldsets, EDITABLE)  # all that is shown but the operator's two controls

    # --- permissions: jobs come from the registry; operators change only the controls ---

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- the verdict of each row ------------------------------------------------------

    def annotate(self, jobs, slots: int) -> None:
        """Each job's spec, health verdict and latest ``slots`` (one query for them all)."""
        specs, now = jobs_or_none(), timezone.now()
        queued = queued_of((specs or {}).values(), jobs)  # attempts on task workers (docs/tasks.md)
        for job in jobs:
            spec = (specs or {}).get(job.name)
            job._spec = spec
            job._registry_ok = specs is not None
            job._queued = queued.get(job.name)
            job._health = job_health(spec, job, now, job._queued) if spec else None
        attach_cells(jobs, now, slots)

    def _annotated(self, job: Job) -> Job:
        if not hasattr(job, "_health"):  # a job's own page: its grid
            self.annotate([job], GRID_SLOTS)
        return job

    def zone(self, job: Job) -> str | None:
        return zone_of(self._annotated(job)._spec)

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
        if status in ("queued", "stuck"):
            note = f" (on {job._queued.backend}: {job._queued.result_id})"
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

    first_run_shown = time_field("first_run", "first run")
    last_run_shown = time_field("last_run", "last run")
    last_success_shown = time_field("last_success", "last success")
    last_skipped_shown = time_field("last_skipped", "last skipped")
    next_slot_shown = time_field("next_slot", "next slot")
    run_requested_shown = time_field("run_requested", "run requested")
    rerun_from_shown = time_field("rerun_from", "re-run from")
    rerun_to_shown = time_field("rerun_to", "re-run to")
    claimed_at_shown = time_field("claimed_at", "claimed at", seconds=True)
    claim_expires_shown = time_field("claim_expires", "claim expires", seconds=True)

    @admin.display(description="latest slots (oldest left)")
    def slot_strip(self, job):
        return format_html("{}{}", strip(self._annotated(job)), self.logs(job))

    @admin.display(description="slots (durations to scale)")
    def slot_grid(self, job):
        return grid(self._annotated(job))

    @admin.display(description="latest failure")
    def latest_failure_shown(self, job):
        log = latest_failure(job)
        if log is None:
            return "none"
        return format_html(
            '<a href="{}" class="latest-failure">started {}</a>, slot {}, attempt {}<br>{}',
            reverse("admin:crontabber_log_change", args=[log.pk]),
            when(log.started_at, self.zone(job)),
            when(log.slot, self.zone(job)),
            log.attempt,
            format_html(PRE, f"{log.error_type}: {log.error_value}"),
        )

    @admin.display(description="next run", ordering="next_run")
    def next_run_shown(self, job):
        job = self._annotated(job)
        shown = when(job.next_run, self.zone(job))
        if job._health is not None and job.next_run and job.schedule != job._health.schedule:
            shown = format_html("{} <em>(the new schedule applies from the next tick)</em>", shown)
        if job.run_requested:
            return format_html(
                "<strong>run requested</strong> for the next tick (asked {})<br>{}",
                when(job.run_requested, self.zone(job)),
                shown,
            )
        return shown

    @admin.display(description="errors", ordering="error_count")
    def errors(self, job):
        if not job.error_count:
            return "0"
        last = job.last_error if len(job.last_error) <= 40 else job.last_error[:39] + "…"
        failed = [c.attempt.id for c in getattr(job, "_cells", []) if c.state in (Outcome.FAILURE, Outcome.TIMEOUT)]
        url = (
            reverse("admin:crontabber_log_change", args=[failed[-1]])
            if failed
            else reverse("admin:crontabber_log_changelist") + "?" + urlencode({"job__id__exact": job.pk})
        )
        return format_html(
            '<a href="{}" class="job-error" title="{}">{}: {}</a>', url, job.last_error, job.error_count, last
        )

    @admin.display(description="logs")
    def logs(self, job):
        url = reverse("admin:crontabber_log_changelist") + "?" + urlencode({"job__id__exact": job.pk})
        return format_html('<a href="{}" class="job-logs">all attempts</a>', url)

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
            "legend": legend(),
        }
        return super().changelist_view(request, extra_context)
