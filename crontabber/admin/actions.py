"""The admin's actions on jobs (run now, re-run, reset, mark success, unlock; enabling and
disabling are switches.py's). Each is a row the runners read on their next tick, and each
is recorded as a LogEntry naming who made it."""

from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils import timezone

from ..engine import repair, rerun
from ..models import Control, Job
from ..registry import jobs_or_none
from ..schedules import format_instant
from ..words import plural
from .display import when_text
from .forms import MarkSuccessForm, RerunForm, UnlockForm

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
        "The next tick runs the slots of each job's schedule in the range again (every one, or those that "
        "failed or never ran), oldest first unless you ask for the newest first, each as a new attempt, before "
        "the job's regular slots (a job that is not a backfill job runs once, for the latest; a folded job "
        "once, told the window). It stops at a failure or at a slot whose dependencies have not succeeded. "
        "The job's schedule is not moved back. First you see what became of the range's slots.",
        "Preview",
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

    def _confirm(self, request, queryset, action, form=None, items=None, preview=(), submit=None):
        """The page that asks the operator to confirm ``action`` (and fill in its form) for
        the jobs (``items``: a line for each, else its name), with a ``preview`` of what it
        would do, a line per job."""
        title, intro, asked = CONFIRMATIONS[action]
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
            "preview": preview,
            "submit": submit or asked,
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
        start, end, choice = (form.cleaned_data[field] for field in ("start", "end", "choice"))
        now, counts = timezone.now(), {}
        for job, spec in known:
            try:
                counts[job.name] = rerun.accepted(spec, start, end, now, choice=choice)
            except rerun.RerunRefused as refused:
                counts[job.name] = refused
        if not form.was_previewed():
            preview = [self._preview(job, spec, start, end, counts[job.name], now) for job, spec in known]
            return self._confirm(request, queryset, "rerun", form.previewing(), preview=preview, submit="Re-run")
        for job, spec in known:
            if isinstance(counts[job.name], rerun.RerunRefused):
                self.message_user(request, f"{job.name}: {counts[job.name]}", messages.ERROR)
            else:
                self._queue_rerun(request, job, spec, start, end, choice, counts[job.name])

    @staticmethod
    def _preview(job, spec, start, end, count, now) -> str:
        """A job's line of the re-run's preview: what became of the range's slots, how many re-run."""
        if isinstance(count, rerun.RerunRefused):
            return f"{job.name}: {count}"
        return f"{job.name}: {rerun.preview(spec, start, end, now)}; {plural(count, 'slot')} would re-run"

    def _queue_rerun(self, request, job, spec, start, end, choice, count) -> None:
        Job.objects.filter(pk=job.pk).update(
            rerun_from=start,
            rerun_to=end,
            rerun_failed_and_missing=choice.failed_and_missing,
            rerun_newest_first=choice.newest_first,
        )
        how = "".join(
            [
                ", failed and missing only" if choice.failed_and_missing else "",
                ", newest first" if choice.newest_first else "",
            ]
        )
        audited = f"from {format_instant(start)} to {format_instant(end)}"  # the history: exact instants
        self.log_change(request, job, f"Re-run queued {audited} ({plural(count, 'slot')}{how})")
        span = f"from {when_text(start, spec.zone)} to {when_text(end, spec.zone)}"
        self.message_user(request, f"{job.name}: {plural(count, 'slot')} {span} re-run on the next tick{how}.")

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
