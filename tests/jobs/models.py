from django.db import models


class Execution(models.Model):
    """What a `work` test job really did, written by the job itself (not by crontabber)."""

    label = models.CharField(max_length=100)
    slot = models.CharField(max_length=40, blank=True)
    pid = models.IntegerField()
    started = models.FloatField()  # time.time() of the host: processes compare on one clock
    finished = models.FloatField(null=True)
