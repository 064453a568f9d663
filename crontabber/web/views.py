"""The health endpoint: GET /crontabber/health/ (crontabber.urls), for load balancers,
uptime checks and Kubernetes probes.

HTTP 200 when the verdict is ok, 503 otherwise. Without credentials the JSON is the
verdict and each job's name and status only: no error text, no user names. The full
report (last tick, hold switch, problems, schedules, one line of each job's last error,
never a traceback) needs ``Authorization: Bearer <CRONTABBER_HEALTH_TOKEN>`` or the session
of staff who may view the jobs (crontabber.view_job); a wrong token is 401. Two queries,
whatever the number of jobs.

GET /crontabber/metrics: the Prometheus metrics (crontabber.web.metrics), for the same token or
session as the full report; 501 when prometheus-client is not installed.
"""

import hmac

from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .. import conf, logger
from ..registry import RegistryError
from . import health, metrics


def health_token() -> str:
    """CRONTABBER_HEALTH_TOKEN: the bearer token that gets the full report ("": none does)."""
    return conf.get("CRONTABBER_HEALTH_TOKEN") or ""


def _full_report_allowed(request) -> bool | None:
    """True: a valid bearer token, or the session of active staff who may view the jobs
    (crontabber.view_job); False: a wrong token; None: neither (what a stranger sees)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = health_token()
        # Compared in constant time, so the answer's timing tells nothing about the token.
        return bool(token) and hmac.compare_digest(given.strip().encode(), token.encode())
    user = getattr(request, "user", None)
    allowed = user is not None and user.is_active and user.is_staff and user.has_perm("crontabber.view_job")
    return True if allowed else None


def _summary(body: dict) -> dict:
    """What anyone may see: the verdict and each job's name and status."""
    return {
        "status": body["status"],
        "checked_at": body["checked_at"],
        "jobs": [{"name": job["name"], "status": job["status"]} for job in body["jobs"]],
    }


@never_cache
@require_safe
def health_view(request):
    full = _full_report_allowed(request)
    if full is False:
        response = JsonResponse({"error": "invalid token"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="crontabber health"'
        return response
    body, status = _full_body(timezone.now())
    return JsonResponse(body if full else _summary(body), status=status)


def _full_body(now) -> tuple[dict, int]:
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
    return body, 200 if report.healthy else 503


def _critical(now, problem: str) -> tuple[dict, int]:
    body = {
        "status": "critical",
        "checked_at": now.isoformat(),
        "last_tick": None,
        "hold_all": None,
        "problems": [health.first_line(problem)],
        "jobs": [],
    }
    return body, 503


@never_cache
@require_safe
def metrics_view(request):
    """Every job's metrics in Prometheus's text format; four queries whatever the number of jobs."""
    if not _full_report_allowed(request):
        response = _text("a bearer token or the session of staff who may view the jobs is required", 401)
        response["WWW-Authenticate"] = 'Bearer realm="crontabber metrics"'
        return response
    if not metrics.available():
        return _text(metrics.MISSING, 501)
    try:
        body = metrics.exposition(timezone.now())
    except RegistryError as error:
        return _text(health.first_line(str(error)), 503)
    except DatabaseError:
        logger.exception("metrics: database error")
        return _text("database unavailable", 503)
    return HttpResponse(body, content_type=metrics.content_type())


def _text(line: str, status: int) -> HttpResponse:
    return HttpResponse(line + "\n", content_type="text/plain; charset=utf-8", status=status)
