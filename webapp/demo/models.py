from django.db import models


class DemoRun(models.Model):
    """What the demo jobs were asked to do: one row per run."""

    command = models.CharField(max_length=100)
    run_time = models.DateTimeField(null=True, blank=True)
    last_success = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
