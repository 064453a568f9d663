from django.apps import AppConfig


class CrontabberConfig(AppConfig):
    name = "crontabber"
    verbose_name = "crontabber"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import notify, registry, scrub  # noqa: F401  registry and scrub register system checks

        notify.connect()  # e-mail and Sentry on each attempt
