"""The job pages' columns and fields: status, schedule, latest slots, next run, errors,
each time in the job's zone and UTC."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .. import conf
from ..models import Job
from ..outcomes import Outcome
from ..schedules import ScheduleError, build_override
from ..web.listing import NOT_IN_REGISTRY
from ..words import took
from .display import BLUE, GREEN, GREY, ORANGE, PRE, RED, grid, latest_failure, strip, time_field, when, zone_of

CHANGES_SHOWN = 50  # the job page's latest schedule changes
STATUS_COLOURS = {
    "ok": GREEN,
    "running": BLUE,
    "queued": BLUE,
    "stuck": RED,
    "isolated": RED,
    "failing": RED,
    "overdue": ORANGE,
    "disabled": GREY,
    NOT_IN_REGISTRY: GREY,
    "registry error": RED,
}


class JobColumns:
    """A mixin of JobAdmin: what its list and change page show of a job, read from the
    job as ``annotate`` left it (its spec, health and latest slots)."""

    def zone(self, job: Job) -> str | None:
        return zone_of(self._annotated(job)._spec)

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

    @admin.display(description="start lag")
    def start_lag_shown(self, job):
        """How late its latest on-time slot started (a backlog's slots, retries and re-runs are not counted)."""
        if job.start_lag is None:
            return "- (no on-time slot yet)"
        late = job.start_lag > conf.get("CRONTABBER_LATE_START_SECONDS")
        text = f"{took(job.start_lag)} after its latest on-time slot"
        return format_html('<span style="color: {}">{} (late)</span>', ORANGE, text) if late else text

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

    @admin.display(description="schedule changes")
    def schedule_changes(self, job):
        """Each change of its schedule or name, newest first: when, what, before, after, who."""
        changes = job.schedule_changes.all()[:CHANGES_SHOWN]
        if not changes:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (when(c.at, self.zone(job)), c.what, c.before or "-", c.after or "-", c.by or "a deploy")
                for c in changes
            ),
        )
        return format_html(
            '<table class="schedule-changes"><thead><tr><th>when</th><th>what</th><th>before</th><th>after</th>'
            "<th>by</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
