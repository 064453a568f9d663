"""The admin's actions on jobs (run now, re-run, reset, mark success, unlock, enable or
disable). Each is a row the runners read on their next tick, and each is recorded as a
LogEntry naming who made it."""

from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils import timezone

from ..engine import pause, repair, rerun
from ..models import Control, Job
from ..registry import jobs_or_none
from ..schedules import format_instant
from ..words import plural
from .display import when_text
from .forms import MarkSuccessForm, RerunForm, ResumeForm, UnlockForm

# Action -> (title, what it does, the confirm button) of its confirmation page.
CONFIRMATIONS = {
    "reset": (
        "Reset jobs?",
        "Each job forgets its state (next slot, last success, errors) and runs as if new, at its first slot "
        "from now (the next tick for a frequency, the next matching time for a time or cron schedule); "
        "a backfill job starts over from then, so the slots it missed are not run. The log is kept.",
        "Yes, reset",
    ),
    "mark_success": (
        "Mark jobs as succeeded?",
        "Records a success of the given slot without running the command, so the slots before it are not "
        "backfilled, and clears the errors. The log gets a row saying you marked it.",
        "Mark succeeded",
    ),
    "rerun": (
        "Re-run a range of slots?",
        "The next tick runs every slot of each job's schedule in the range again, oldest first, whatever "
        "their outcome, each as a new attempt, before the job's regular slots (a job that is not a backfill "
        "job runs once, for the latest). It stops at a failure or at a slot whose dependencies have not "
        "succeeded. The job's schedule is not moved back.",
        "Re-run",
    ),
    "enable": (
        "Enable jobs?",
        "Each job runs whatever the registry says. The slots that fell due while it was disabled or held are "
        "recorded as one paused span; choose whether they run.",
        "Enable",
    ),
    "unlock": (
        "Release the jobs' claims?",
        "For a runner that died holding a job: its claim is released, its unfinished attempts are recorded "
        "as interrupted and their slots run again. A claim that has not expired may belong to a runner "
        "that is still running the job.",
        "Release the claims",
    ),
}


class JobActions:
    """A mixin of JobAdmin: its actions."""

    actions = ["run_now", "rerun", "reset", "mark_success", "unlock", "enable", "disable", "registry_decides"]

    # --- actions ---------------------------------------------------------------------------

    def _split(self, request, queryset):
        """(jobs in the registry with their specs, names not in it). A broken registry: none."""
        specs = jobs_or_none()
        if specs is None:
            self.message_user(request, "The registry has a mistake; fix it first (manage.py check).", messages.ERROR)
            return [], []
        jobs = list(queryset)
        known = [(job, specs[job.name]) for job in jobs if job.name in specs]
        missing = [job.name for job in jobs if job.name not in specs]
        if missing:
            self.message_user(request, f"Not in the registry, left alone: {', '.join(missing)}", messages.WARNING)
        return known, missing

    def _confirm(self, request, queryset, action, form=None, items=None):
        """The page that asks the operator to confirm ``action`` (and fill in its form) for
        the jobs (``items``: a line for each, else its name)."""
        title, intro, submit = CONFIRMATIONS[action]
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "opts": self.model._meta,
            "queryset": queryset,
            "items": items or [job.name for job in queryset],
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
        held = Control.load().hold_all
        note = " All jobs are held: they run once the hold is released." if held else ""
        running = [job.name for job, _ in known if job.is_claimed(now)]
        if running:
            note += (
                f" Running now: {', '.join(running)}; the attempt under way serves the request "
                "(a request is cleared when any attempt ends)."
            )
        self.message_user(request, f"Queued to run on the next tick: {names}.{note}")

    @admin.action(description="Re-run a range of slots (on the next tick)", permissions=["change"])
    def rerun(self, request, queryset):
        form = RerunForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._confirm(request, queryset, "rerun", form)
        known, _ = self._split(request, queryset)
        start, end, now = form.cleaned_data["start"], form.cleaned_data["end"], timezone.now()
        audited = f"from {format_instant(start)} to {format_instant(end)}"  # the history: exact instants
        for job, spec in known:
            span = f"from {when_text(start, spec.zone)} to {when_text(end, spec.zone)}"
            try:
                count = rerun.accepted(spec, start, end, now)
            except rerun.RerunRefused as refused:
                self.message_user(request, f"{job.name}: {refused}", messages.ERROR)
                continue
            if form.cleaned_data["dry_run"]:
                self.message_user(
                    request, f"{job.name}: {plural(count, 'slot')} {span} would re-run (dry run: nothing queued)."
                )
                continue
            Job.objects.filter(pk=job.pk).update(rerun_from=start, rerun_to=end)
            self.log_change(request, job, f"Re-run queued {audited} ({plural(count, 'slot')})")
            self.message_user(request, f"{job.name}: {plural(count, 'slot')} {span} re-run on the next tick.")

    @admin.action(description="Reset: forget state, run as new", permissions=["change"])
    def reset(self, request, queryset):
        if "apply" not in request.POST:
            return self._confirm(request, queryset, "reset")
        try:
            jobs = repair.reset([job.name for job in queryset])
        except repair.RepairError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        specs, now = jobs_or_none() or {}, timezone.now()
        for name, job in sorted(jobs.items()):
            spec = specs.get(name)
            shown = partial(when_text, zone=spec.zone) if spec else None
            what = repair.runs_next_after_reset(spec, job, now, shown) if spec else "it is not in the registry"
            self.log_change(request, job, f"Reset: state forgotten; {what}")
            self.message_user(request, f"{name}: reset; {what}.")

    @admin.action(description="Mark success (without running)", permissions=["change"])
    def mark_success(self, request, queryset):
        form = MarkSuccessForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():  # not confirmed yet, or not valid
            return self._confirm(request, queryset, "mark_success", form)
        known, _ = self._split(request, queryset)
        if not known:
            return
        who, marked = f"{request.user.get_username()} in the admin", form.cleaned_data["mark_time"]
        try:
            done = repair.mark_success(
                [spec for _, spec in known], marked, by=who, confirmed=form.cleaned_data["moves_back"]
            )
        except repair.Unconfirmed as asked:
            form.add_error("moves_back", f"{asked}.")
            return self._confirm(request, queryset, "mark_success", form)
        except repair.RepairError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        zones = {spec.name: spec.zone for _, spec in known}
        for marked_job in done:
            self.log_change(request, marked_job.job, f"Mark success: {marked_job.said()} (without running)")
        self.message_user(
            request,
            "; ".join(f"{m.job.name}: {m.said(partial(when_text, zone=zones[m.job.name]))}" for m in done),
        )

    @admin.action(description="Unlock: release a dead runner's claim", permissions=["change"])
    def unlock(self, request, queryset):
        form = UnlockForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._confirm(request, queryset, "unlock", form)
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
        """Asks first what to do with the slots each job's pause left, saying what each choice runs."""
        form = ResumeForm(request.POST if "apply" in request.POST else None)
        known, _ = self._split(request, queryset)
        if known and not form.is_valid():
            now = timezone.now()
            said = [pause.choices(spec, job, now, partial(when_text, zone=spec.zone)) for job, spec in known]
            return self._confirm(request, queryset, "enable", form, said)
        if known:
            self._enable(request, known, form.cleaned_data["choice"] or None)
        return None

    def _enable(self, request, known, choice: str | None) -> None:
        """Enabled over the registry, each resumed with ``choice`` (None: as its schedule says)."""
        who, zones = f"{request.user.get_username()} in the admin", {spec.name: spec.zone for _, spec in known}
        try:
            with transaction.atomic():
                Job.objects.filter(pk__in=[job.pk for job, _ in known]).update(enabled_override=True)
                done = pause.resume_named([spec for _, spec in known], timezone.now(), choice, True, who)
        except repair.RepairError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        said = {item.name: item.said(partial(when_text, zone=zones[item.name])) for item in done}
        for job, _ in known:
            self.log_change(request, job, f"Enabled by an operator; {said.get(job.name, 'no slot to catch up')}")
        self.message_user(request, "; ".join(f"{job.name}: enabled; {said.get(job.name, '-')}" for job, _ in known))

    @admin.action(description="Disable (override the registry)", permissions=["change"])
    def disable(self, request, queryset):
        pause.Pauses(timezone.now(), None).pause([job.name for job in queryset])
        self._set_enabled(request, queryset, False, "Disabled by an operator")

    @admin.action(description="Enabled or not: registry decides", permissions=["change"])
    def registry_decides(self, request, queryset):
        self._set_enabled(request, queryset, None, "Enabled or not: the registry decides")
