from django.apps import AppConfig


class CrontabberConfig(AppConfig):
    name = "crontabber"
    verbose_name = "crontabber"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import notify, registry  # noqa: F401  registry registers the system check

        notify.connect()  # e-mail and Sentry on each attempt
