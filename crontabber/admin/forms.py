"""The admin's forms: an operator's overrides, the slot to mark succeeded, unlocking."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils import timezone

from ..engine.pause import CATCH_UP, SKIP
from ..engine.rerun import RerunRefused, check_range
from ..models import Job
from ..registry import jobs_or_none
from ..schedules import ScheduleError, build_override, format_instant, parse_instant, parse_time

ENABLED_CHOICES = [("", "Registry decides"), ("True", "Enabled (override)"), ("False", "Disabled (override)")]
OVERRIDE_HELP = "Use daily times like 03:00,15:30 or one interval like 30m, 2h or 1d (not both)."


def clean_override(text: str, zone: str) -> str:
    """An operator's schedule override, checked with build_override and normalised
    ('' clears it). Raises forms.ValidationError with a message the operator can act on."""
    text = (text or "").strip()
    if not text:
        return ""
    times, intervals = _pieces(text)
    if times and intervals:
        raise forms.ValidationError(f"{text!r} mixes times and an interval. {OVERRIDE_HELP}")
    if len(intervals) > 1:
        raise forms.ValidationError(f"{text!r}: give one interval, not several. {OVERRIDE_HELP}")
    try:
        build_override(text, zone)
    except ScheduleError as error:
        raise forms.ValidationError(f"{error}. {OVERRIDE_HELP}") from None
    return ",".join(sorted({f"{parse_time(part):%H:%M}" for part in times})) if times else intervals[0]


def _pieces(text: str) -> tuple[list[str], list[str]]:
    """The comma-separated pieces of an override: (wall times, intervals), spaces removed."""
    pieces = ["".join(piece.split()) for piece in text.split(",")]
    times = [piece for piece in pieces if ":" in piece]
    return times, [piece for piece in pieces if piece and ":" not in piece]


class JobForm(forms.ModelForm):
    enabled_override = forms.NullBooleanField(
        required=False,
        label="Enabled",
        widget=forms.Select(choices=ENABLED_CHOICES),
        help_text="Enable or disable the job whatever the registry says, or let the registry decide.",
    )
    schedule_override = forms.CharField(
        required=False,
        max_length=200,
        label="Schedule override",
        help_text="Replaces the registry's schedule while set; empty: the registry's schedule. " + OVERRIDE_HELP,
    )

    class Meta:
        model = Job
        fields = ["enabled_override", "schedule_override"]

    def clean_schedule_override(self):
        spec = (jobs_or_none() or {}).get(self.instance.name)
        return clean_override(self.cleaned_data["schedule_override"], spec.zone if spec else settings.TIME_ZONE)


class MarkSuccessForm(forms.Form):
    mark_time = forms.CharField(
        required=False,
        label="Slot to mark",
        help_text="ISO 8601, such as 2026-05-01T03:00 (read in TIME_ZONE when it has no offset); empty: now.",
    )

    moves_back = forms.BooleanField(
        required=False,
        label="Mark even when this runs slots again",
        help_text="A slot before a job's last success moves it back: every slot after it runs again.",
    )

    def clean_mark_time(self):
        now = timezone.now()
        text = self.cleaned_data["mark_time"].strip()
        if not text:
            return now.replace(microsecond=0)
        try:
            marked = parse_instant(text, timezone.get_default_timezone())
        except ScheduleError as error:
            raise forms.ValidationError(str(error)) from None
        if marked > now:
            raise forms.ValidationError(f"{format_instant(marked)} is in the future")
        return marked


class UnlockForm(forms.Form):
    force = forms.BooleanField(
        required=False,
        label="Also release claims that have not expired",
        help_text="Their runner may still be running the job: it would then run twice at once.",
    )


class ResumeForm(forms.Form):
    choice = forms.ChoiceField(
        required=False,
        label="The slots due while paused",
        widget=forms.RadioSelect,
        choices=[
            ("", "As its schedule says: a backfill job catches them up, another waits for its next slot"),
            (CATCH_UP, "Catch up: run them (a backfill job each, another once, for the latest)"),
            (SKIP, "Skip: run none, wait for the next slot"),
        ],
    )


class RerunForm(forms.Form):
    start = forms.CharField(
        label="From slot", help_text="ISO 8601, such as 2026-05-01T03:00 (TIME_ZONE without offset)."
    )
    end = forms.CharField(label="To slot", help_text="The last slot to re-run, included; not in the future.")
    dry_run = forms.BooleanField(required=False, label="Dry run", help_text="Only say which slots would re-run.")

    def clean(self):
        data = super().clean()
        if "start" not in data or "end" not in data:
            return data
        try:
            zone = timezone.get_default_timezone()
            data["start"], data["end"] = check_range(
                parse_instant(data["start"], zone), parse_instant(data["end"], zone), timezone.now()
            )
        except (ScheduleError, RerunRefused) as error:
            raise forms.ValidationError(str(error)) from None
        return data
