from django.apps import AppConfig


class CrontabberConfig(AppConfig):
    name = "crontabber"
    verbose_name = "crontabber"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import alerts, scrub  # noqa: F401  scrub registers a system check
        from .registry import jobs  # noqa: F401  registers the registry's system check

        alerts.connect()  # e-mail and Sentry on each attempt
