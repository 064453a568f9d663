from django.apps import AppConfig


class CrontabberConfig(AppConfig):
    name = "crontabber"
    verbose_name = "crontabber"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import registry  # noqa: F401  registers the system check
