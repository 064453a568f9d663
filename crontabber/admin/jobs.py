"""Operators' pages: the jobs (status, latest slots, schedule, controls); their attempts
and the control row are logs.py's, shown read-only.

Nothing here runs a job: "run now" queues the job for the next tick (Job.run_requested),
and every other control is a row the runners read on each tick. Every change is recorded
as a django.contrib.admin LogEntry naming who made it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.utils import timezone

from .. import conf
from ..models import Control, Job, ScheduleChange
from ..registry import RegistryError, effective_spec, jobs_or_none, load_jobs
from ..web.health import job_health, queued_of
from .actions import JobActions
from .columns import JobColumns
from .display import (
    GRID_SLOTS,
    attach_cells,
    legend,
)
from .forms import JobForm
from .hold import HoldSwitch


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
class JobAdmin(HoldSwitch, JobActions, JobColumns, admin.ModelAdmin):
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
                    "start_lag_shown",
                    "error_count",
                    "last_error",
                ]
            },
        ),
        ("Claim", {"fields": ["claimed_by", "claimed_at_shown", "claim_expires_shown", "taken_over_from"]}),
        ("Schedule changes", {"fields": ["schedule_changes"]}),
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

    def get_changelist(self, request, **kwargs):
        return JobChangeList

    def log_change(self, request, obj, message):
        """Every change an operator makes here is in the history, and wakes the sleeping
        ``cronrun --loop`` runners (Control.ask), which tick within CRONTABBER_REQUEST_POLL_SECONDS."""
        Control.ask(timezone.now())
        return super().log_change(request, obj, message)

    # --- the change form: only the two overrides are editable ---------------------------

    def save_model(self, request, obj, form, change):
        # Only the operator's fields: a runner may be writing the job's state meanwhile.
        fields = [name for name in self.EDITABLE if name in form.changed_data]
        if fields:
            obj.save(update_fields=fields)
        if "schedule_override" in fields:
            self.record_schedule_change(request, obj, form.initial.get("schedule_override") or "")

    def record_schedule_change(self, request, job: Job, previous: str) -> None:
        """An override that changes the schedule in force, recorded now with who made it
        (the next tick realigns the job from this time: Job.objects.realign)."""
        spec = (jobs_or_none() or {}).get(job.name)
        if spec is None:
            return
        before = effective_spec(spec, Job(schedule_override=previous)).schedule.description
        after = effective_spec(spec, job).schedule.description
        if after != before:
            ScheduleChange.objects.create(
                job=job,
                at=timezone.now(),
                what=ScheduleChange.OVERRIDE,
                before=before,
                after=after,
                by=request.user.get_username(),
            )

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
