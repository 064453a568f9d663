"""The scheduled task: a no-op, registered with the scheduler of this run (settings.SCHEDULER)
in its own way; crontabber's is in settings.CRONTABBER_JOBS."""

from django.conf import settings
from django.tasks import task


@task
def tick(run_time=None, last_success=None):
    """Nothing: the figures are read from django-tasks-db's rows (enqueued, started)."""


if settings.SCHEDULER == "django-crontask":
    from crontask import cron

    cron(settings.CRON, sentry_monitor_config=None)(tick)
elif settings.SCHEDULER == "django-periodic-tasks":
    from django_periodic_tasks import scheduled_task

    scheduled_task(cron=settings.CRON, name="tick")(tick)
