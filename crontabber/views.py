"""The health endpoint: GET /crontabber/health/ (crontabber.urls), for load balancers,
uptime checks and Kubernetes probes.

JSON: the verdict ("ok", "warning", "critical"), when any runner last ticked, the hold
switch, the problems, and each job's status (ok, running, failing, overdue, disabled).
HTTP 200 when the verdict is ok, 503 otherwise. No authentication: it shows job names,
schedules and one line of each job's last error, never a traceback. Two queries,
whatever the number of jobs.
"""

import logging

from django.db import DatabaseError
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import health
from .registry import RegistryError

logger = logging.getLogger("crontabber")


@never_cache
@require_safe
def health_view(request):
    now = timezone.now()
    try:
        report = health.report(now=now)
    except RegistryError as error:
        return _critical(now, str(error))
    except DatabaseError:
        logger.exception("health check: database error")
        return _critical(now, "database unavailable")  # its message may name hosts and users
    body = report.as_dict()
    body["checked_at"] = now.isoformat()
    body["problems"] = [health.first_line(problem) for problem in body["problems"]]
    for job in body["jobs"]:
        job["last_error"] = health.first_line(job["last_error"]) or None
    return JsonResponse(body, status=200 if report.healthy else 503)


def _critical(now, problem: str) -> JsonResponse:
    body = {
        "status": "critical",
        "checked_at": now.isoformat(),
        "last_tick": None,
        "hold_all": None,
        "problems": [health.first_line(problem)],
        "jobs": [],
    }
    return JsonResponse(body, status=503)
