"""The admin's actions that turn jobs on and off: enable (asking first what to do with the
slots its pause left), disable (paused at once), or let the registry decide."""

from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from ..engine import pause, repair
from ..models import Job
from .display import when_text
from .forms import ResumeForm


class JobSwitches:
    """A mixin of JobAdmin (beside JobActions, whose _split and _confirm it uses)."""

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
