"""The switch that holds every job (Control.hold_all): two POST views on the job list,
for staff who may change the control row; each use is recorded as a LogEntry."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from ..models import Control
from ..schedules import format_instant


class HoldSwitch:
    """A mixin of JobAdmin: the hold and release views."""

    @staticmethod
    def can_hold(request) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.has_perm("crontabber.change_control")

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
            control, changed = Control.hold(by=who, now=timezone.now())
            if changed:
                self.log_change(request, control, "Held all jobs: no runner starts any job until released")
                self.message_user(request, "All jobs are held: no runner starts any job until you release them.")
            else:
                self.message_user(request, f"All jobs were already held by {control.held_by}.", messages.WARNING)
        else:
            before, changed = Control.release()
            if changed:
                self.log_change(
                    request,
                    Control.load(),
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
