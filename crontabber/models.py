from django.db import models


class Job(models.Model):
    """The state of one registered job, keyed by its registry name."""

    name = models.CharField(max_length=200, unique=True)
    # The registry schedule this state was computed for: a change realigns next_slot.
    schedule = models.CharField(max_length=300, blank=True)
    first_run = models.DateTimeField(null=True, blank=True, help_text="When the job was first seen.")
    last_run = models.DateTimeField(null=True, blank=True, help_text="When the latest attempt started.")
    last_success = models.DateTimeField(null=True, blank=True, help_text="Slot of the latest success.")
    next_slot = models.DateTimeField(null=True, blank=True, help_text="Oldest slot not yet handled.")
    next_run = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When the job is next due (later than next_slot while backing off).",
    )
    error_count = models.PositiveIntegerField(default=0, help_text="Consecutive failed attempts.")
    last_error = models.TextField(blank=True)
    # The claim: who is running the job, and until when the claim holds unless renewed.
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_expires = models.DateTimeField(null=True, blank=True)
    taken_over_from = models.CharField(
        max_length=200, blank=True, help_text="The expired claim the latest claim replaced."
    )
    last_skipped = models.DateTimeField(null=True, blank=True, help_text="Slot of the latest skipped run.")
    # Operators' controls (admin), obeyed by every runner.
    enabled_override = models.BooleanField(
        null=True,
        blank=True,
        help_text="Enable or disable the job regardless of the registry; empty: the registry decides.",
    )
    schedule_override = models.CharField(
        max_length=200,
        blank=True,
        help_text="Replaces the registry's schedule while set: "
        "times 'HH:MM,HH:MM' or an interval such as '30m', '2h', '1d'.",
    )
    run_requested = models.DateTimeField(
        null=True, blank=True, help_text="Run on the next tick, whatever the schedule."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def ongoing(self):
        return bool(self.claimed_by)


class Log(models.Model):
    """One attempt to run one slot of one job."""

    RUNNING = "running"  # not terminal: the attempt has started and not yet ended
    SUCCESS, FAILURE, TIMEOUT, SKIPPED, INTERRUPTED = (
        "success",
        "failure",
        "timeout",
        "skipped",
        "interrupted",
    )
    OUTCOMES = [(o, o) for o in (RUNNING, SUCCESS, FAILURE, TIMEOUT, SKIPPED, INTERRUPTED)]

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    slot = models.DateTimeField()
    started_at = models.DateTimeField()
    duration = models.FloatField(help_text="Seconds.")
    outcome = models.CharField(max_length=20, choices=OUTCOMES)
    attempt = models.PositiveIntegerField(default=1, help_text="1 for the first try of a slot, 2 for its retry...")
    error_type = models.CharField(max_length=200, blank=True)
    error_value = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    output = models.TextField(blank=True, help_text="The tail of the command's output.")
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["job", "-started_at"], name="crontabber_log_job_started")]

    def __str__(self):
        return f"{self.job.name} {self.slot:%Y-%m-%d %H:%M} {self.outcome}"


class Control(models.Model):
    """One row shared by every runner: the hold switch and the last tick."""

    hold_all = models.BooleanField(default=False, help_text="While set, no runner starts any job.")
    held_by = models.CharField(max_length=150, blank=True)
    held_since = models.DateTimeField(null=True, blank=True)
    last_tick = models.DateTimeField(null=True, blank=True, help_text="When any runner last ticked.")
    last_tick_by = models.CharField(max_length=200, blank=True)
    last_purge = models.DateTimeField(null=True, blank=True, help_text="When old Log rows were last deleted.")

    class Meta:
        verbose_name = "control"

    def __str__(self):
        return "all jobs held" if self.hold_all else "running normally"

    @classmethod
    def get(cls):
        return cls.objects.get_or_create(pk=1)[0]
