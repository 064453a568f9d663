"""Operators' pages: the jobs (status, schedule, controls) and their attempts (read-only).

Nothing here runs a job: "run now" queues the job for the next tick (Job.run_requested),
and every other control is a row the runners read on each tick. Every change is recorded
as a django.contrib.admin LogEntry naming who made it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from . import repair
from .health import job_health
from .models import Control, Job, Log
from .registry import RegistryError, load_jobs
from .schedule import ScheduleError, build_override, format_instant, parse_instant, parse_time

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
ENABLED_CHOICES = [("", "Registry decides"), ("True", "Enabled (override)"), ("False", "Disabled (override)")]
OVERRIDE_HELP = "Use daily times like 03:00,15:30 or one interval like 30m, 2h or 1d (not both)."


def when(instant, seconds=False) -> str:
    """A compact local time for the lists, with the exact instant as its tooltip."""
    if instant is None:
        return "-"
    local = timezone.localtime(instant)
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return format_html('<span title="{}">{} {}</span>', instant.isoformat(), shown, local.tzname())


def registry():
    """The registry's specs by name, or None when the registry has a mistake."""
    try:
        return {spec.name: spec for spec in load_jobs()}
    except RegistryError:
        return None


def clean_override(text: str, zone: str) -> str:
    """An operator's schedule override, checked with build_override and normalised
    ('' clears it). Raises forms.ValidationError with a message the operator can act on."""
    text = (text or "").strip()
    if not text:
        return ""
    parts = [part.strip() for part in text.split(",")]
    if ":" in text and not all(":" in part for part in parts if part):
        raise forms.ValidationError(f"{text!r} mixes times and an interval. {OVERRIDE_HELP}")
    if ":" not in text and len(parts) > 1:
        raise forms.ValidationError(f"{text!r}: give one interval, not several. {OVERRIDE_HELP}")
    try:
        build_override(text, zone)
    except ScheduleError as error:
        raise forms.ValidationError(f"{error}. {OVERRIDE_HELP}") from None
    if ":" in text:
        return ",".join(f"{t:%H:%M}" for t in sorted({parse_time(part) for part in parts if part}))
    return "".join(text.split())


class JobForm(forms.ModelForm):
    enabled_override = forms.NullBooleanField(
        required=False,
        label="Enabled",
        widget=forms.Select(choices=ENABLED_CHOICES),
        help_text="Enable or disable the job whatever the registry says, or let the registry decide.",
    )
    schedule_override = forms.CharField(
        required=False,
        max_length=200,
        label="Schedule override",
        help_text="Replaces the registry's schedule while set; empty: the registry's schedule. " + OVERRIDE_HELP,
    )

    class Meta:
        model = Job
        fields = ["enabled_override", "schedule_override"]

    def clean_schedule_override(self):
        spec = (registry() or {}).get(self.instance.name)
        return clean_override(self.cleaned_data["schedule_override"], spec.zone if spec else settings.TIME_ZONE)


class MarkSuccessForm(forms.Form):
    mark_time = forms.CharField(
        required=False,
        label="Slot to mark",
        help_text="ISO 8601, such as 2026-05-01T03:00 (read in TIME_ZONE when it has no offset); empty: now.",
    )

    def clean_mark_time(self):
        now = timezone.now()
        text = self.cleaned_data["mark_time"].strip()
        if not text:
            return now.replace(microsecond=0)
        try:
            marked = parse_instant(text, timezone.get_default_timezone())
        except ScheduleError as error:
            raise forms.ValidationError(str(error)) from None
        if marked > now:
            raise forms.ValidationError(f"{format_instant(marked)} is in the future")
        return marked


class UnlockForm(forms.Form):
    force = forms.BooleanField(
        required=False,
        label="Also release claims that have not expired",
        help_text="Their runner may still be running the job: it would then run twice at once.",
    )


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
class JobAdmin(admin.ModelAdmin):
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
    actions = ["run_now", "reset", "mark_success", "unlock", "enable", "disable", "registry_decides"]
    fieldsets = [
        (None, {"fields": ["name", "status", "registry_schedule", "schedule_shown", "logs"]}),
        ("Operator's controls", {"fields": ["enabled_override", "schedule_override", "run_requested"]}),
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

    @staticmethod
    def can_hold(request) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.has_perm("crontabber.change_control")

    # --- the verdict of each row ------------------------------------------------------

    def annotate(self, jobs) -> None:
        specs, now = registry(), timezone.now()
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
            "control": Control.objects.filter(pk=1).first() or Control(),
            "can_hold": self.can_hold(request),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view  # staff only, CSRF-protected
        return [
            path("hold/", view(self.hold_view), name="crontabber_job_hold"),
            path("release/", view(self.release_view), name="crontabber_job_release"),
        ] + super().get_urls()

    def _hold_switch(self, request, hold: bool):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.can_hold(request):
            raise PermissionDenied
        who = request.user.get_username()
        if hold:
            control, changed = repair.hold_all(by=who)
            if changed:
                self.log_change(request, control, "Held all jobs: no runner starts any job until released")
                self.message_user(request, "All jobs are held: no runner starts any job until you release them.")
            else:
                self.message_user(request, f"All jobs were already held by {control.held_by}.", messages.WARNING)
        else:
            before, changed = repair.release_all()
            if changed:
                self.log_change(
                    request,
                    Control.get(),
                    f"Released the hold on all jobs (held by {before.held_by} "
                    f"since {format_instant(before.held_since)})",
                )
                self.message_user(request, "Released: jobs run again from the next tick.")
            else:
                self.message_user(request, "Jobs were not held.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:crontabber_job_changelist"))

    def hold_view(self, request):
        return self._hold_switch(request, True)

    def release_view(self, request):
        return self._hold_switch(request, False)

    # --- actions ---------------------------------------------------------------------------

    def _split(self, request, queryset):
        """(jobs in the registry with their specs, names not in it). A broken registry: none."""
        specs = registry()
        if specs is None:
            self.message_user(request, "The registry has a mistake; fix it first (manage.py check).", messages.ERROR)
            return [], []
        jobs = list(queryset)
        known = [(job, specs[job.name]) for job in jobs if job.name in specs]
        missing = [job.name for job in jobs if job.name not in specs]
        if missing:
            self.message_user(request, f"Not in the registry, left alone: {', '.join(missing)}", messages.WARNING)
        return known, missing

    def _confirm(self, request, queryset, action, title, intro, form=None, submit="Confirm"):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "opts": self.model._meta,
            "queryset": queryset,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "form": form,
            "submit": submit,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/crontabber/job/confirm_action.html", context)

    @admin.action(description="Run now (on the next tick)", permissions=["change"])
    def run_now(self, request, queryset):
        known, _ = self._split(request, queryset)
        if not known:
            return
        now = timezone.now()
        Job.objects.filter(pk__in=[job.pk for job, _ in known]).update(run_requested=now)
        for job, _ in known:
            self.log_change(request, job, "Run now: queued for the next tick")
        names = ", ".join(job.name for job, _ in known)
        held = Control.objects.filter(pk=1, hold_all=True).exists()
        note = " All jobs are held: they run once the hold is released." if held else ""
        running = [job.name for job, _ in known if repair.is_running(job, now)]
        if running:
            note += (
                f" Running now: {', '.join(running)}; the attempt under way serves the request "
                "(a request is cleared when any attempt ends)."
            )
        self.message_user(request, f"Queued to run on the next tick: {names}.{note}")

    @admin.action(description="Reset: forget state, run as new", permissions=["change"])
    def reset(self, request, queryset):
        if "apply" not in request.POST:
            return self._confirm(
                request,
                queryset,
                "reset",
                "Reset jobs?",
                "Each job forgets its state (next slot, last success, errors) and runs on the next tick as if new; "
                "a backfill job starts over from then, so the slots it missed are not run. The log is kept.",
                submit="Yes, reset",
            )
        try:
            jobs = repair.reset([job.name for job in queryset])
        except repair.RepairError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        for job in jobs.values():
            self.log_change(request, job, "Reset: state forgotten; runs on the next tick as a new job")
        if jobs:
            self.message_user(request, f"Reset: {', '.join(sorted(jobs))}; each runs on the next tick as a new job.")

    @admin.action(description="Mark success (without running)", permissions=["change"])
    def mark_success(self, request, queryset):
        form = MarkSuccessForm(request.POST if "apply" in request.POST else None)
        if not form.is_bound or not form.is_valid():
            return self._confirm(
                request,
                queryset,
                "mark_success",
                "Mark jobs as succeeded?",
                "Records a success of the given slot without running the command, so the slots before it are not "
                "backfilled, and clears the errors. The log gets a row saying you marked it.",
                form=form,
                submit="Mark succeeded",
            )
        known, _ = self._split(request, queryset)
        if not known:
            return
        who = f"{request.user.get_username()} in the admin"
        try:
            done = repair.mark_success([spec for _, spec in known], form.cleaned_data["mark_time"], by=who)
        except repair.RepairError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        for job in done:
            self.log_change(
                request,
                job,
                f"Marked succeeded at {format_instant(job.last_success)} without running; "
                f"next run {format_instant(job.next_run)}",
            )
        self.message_user(
            request,
            "; ".join(
                f"{job.name}: marked succeeded at {format_instant(job.last_success)}, "
                f"next run {format_instant(job.next_run)}"
                for job in done
            ),
        )

    @admin.action(description="Unlock: release a dead runner's claim", permissions=["change"])
    def unlock(self, request, queryset):
        form = UnlockForm(request.POST if "apply" in request.POST else None)
        if not form.is_bound or not form.is_valid():
            return self._confirm(
                request,
                queryset,
                "unlock",
                "Release the jobs' claims?",
                "For a runner that died holding a job: its claim is released, its unfinished attempts are recorded "
                "as interrupted and their slots run again. A claim that has not expired may belong to a runner "
                "that is still running the job.",
                form=form,
                submit="Release the claims",
            )
        who = f"{request.user.get_username()} in the admin"
        try:
            released = repair.unlock(
                [job.name for job in queryset],
                force=form.cleaned_data["force"],
                by=who,
                force_hint="tick 'also release claims that have not expired' to release anyway",
            )
        except repair.RepairError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        if not released:
            self.message_user(request, "No selected job is claimed; nothing to release.", messages.WARNING)
            return
        jobs = {job.name: job for job in queryset}
        for claim in released:
            self.log_change(request, jobs[claim.name], f"Unlocked: released the claim of {claim.claimed_by}")
        self.message_user(
            request,
            "; ".join(f"{claim.name}: released the claim of {claim.claimed_by}" for claim in released),
        )

    def _set_enabled(self, request, queryset, value, message):
        jobs = [job for job in queryset if job.enabled_override is not value]
        Job.objects.filter(pk__in=[job.pk for job in jobs]).update(enabled_override=value)
        for job in jobs:
            self.log_change(request, job, message)
        self.message_user(request, f"{message}: {', '.join(job.name for job in jobs)}." if jobs else "Nothing changed.")

    @admin.action(description="Enable (override the registry)", permissions=["change"])
    def enable(self, request, queryset):
        self._set_enabled(request, queryset, True, "Enabled by an operator")

    @admin.action(description="Disable (override the registry)", permissions=["change"])
    def disable(self, request, queryset):
        self._set_enabled(request, queryset, False, "Disabled by an operator")

    @admin.action(description="Enabled or not: registry decides", permissions=["change"])
    def registry_decides(self, request, queryset):
        self._set_enabled(request, queryset, None, "Enabled or not: the registry decides")


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

    list_display = ("__str__", "held_by", "held_since", "last_tick", "last_tick_by", "last_purge")
    fields = ("hold_all", "held_by", "held_since", "last_tick", "last_tick_by", "last_purge")
    readonly_fields = fields
