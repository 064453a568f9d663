"""Messages that are true: a reset says when the job runs next, a forced run of a backfill
job is given a real slot, a mark that moves a last success back says how many slots run
again and asks first (command and admin), the admin shows a rewound job's slots, counts
and durations read naturally, and typos get a suggestion."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from freezegun import freeze_time

from crontabber.models import Control, Job, Log
from crontabber.registry import RegistryError, load_jobs
from crontabber.words import plural, took
from tests.helpers import at, job, tick
from tests.jobs import control
from tests.test_admin import JOBS, OPERATOR, client_for, said

pytestmark = pytest.mark.django_db
HOURLY = {"name": "hourly", "cmd": "record", "cron": "0 * * * *", "backfill": True}
NIGHTLY = {"name": "nightly", "cmd": "record", "frequency": "1d", "time": "03:30", "timezone": "Europe/Paris"}
MARK_BACK = "2026-05-01T02:00:00+00:00"  # before hourly's last success of 12:00


def run(*args, when="2026-05-01 12:20"):
    out = StringIO()
    with freeze_time(at(when)):
        call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def ran_all_day(jobs):
    jobs([HOURLY, NIGHTLY, {"name": "often", "cmd": "record", "frequency": "5m"}])
    tick(at("2026-05-01 00:00"))
    tick(at("2026-05-01 12:00"))


# --- a reset says when the job runs next ---------------------------------------------------


def test_a_reset_says_when_each_job_runs_next(jobs):
    ran_all_day(jobs)
    assert run("cronreset", "nightly", "often", "hourly") == [
        # 03:30 in Paris is 01:30 UTC (summer time), tomorrow
        "nightly: reset; it runs as a new job at 2026-05-02T01:30:00+00:00 (in 13 h 10 min)",
        "often: reset; it runs on the next tick as a new job",
        "hourly: reset; it runs as a new job at 2026-05-01T13:00:00+00:00 (in 40 min)",
    ]


def test_a_reset_of_a_disabled_job_says_it_does_not_run(jobs):
    ran_all_day(jobs)
    Job.objects.filter(name="often").update(enabled_override=False)
    assert run("cronreset", "often") == ["often: reset; it is disabled, so it does not run until it is enabled"]


def test_the_admins_reset_says_when_the_job_runs_next_in_its_zone(jobs):
    ran_all_day(jobs)
    with freeze_time(at("2026-05-01 12:20")):
        client = client_for(*OPERATOR)
        page = client.post(
            JOBS, {"action": "reset", "_selected_action": [job("nightly").pk], "apply": "yes"}, follow=True
        )
    assert "nightly: reset; it runs as a new job at 2026-05-02 03:30 CEST" in said(page)
    assert "(in 13 h 10 min)" in said(page)


# --- a forced run of a backfill job is given a real slot ------------------------------------


def test_a_forced_run_of_a_backfill_job_with_nothing_due_runs_its_latest_slot(jobs):
    ran_all_day(jobs)
    control.CALLS.clear()
    run("cronrun", "--job", "hourly", "--force", when="2026-05-01 12:40")
    assert [call["run_time"] for call in control.CALLS] == [at("2026-05-01 12:00")]
    state = job("hourly")
    assert state.next_slot == at("2026-05-01 13:00"), "the schedule is not moved"
    assert Log.objects.filter(job=state, slot=at("2026-05-01 12:00"), outcome="success").count() == 2


def test_a_forced_run_of_a_new_backfill_job_runs_the_latest_slot_of_its_schedule(jobs):
    jobs([{**NIGHTLY, "backfill": True}])
    tick(at("2026-05-01 12:00"))  # its first slot is tomorrow's
    run("cronrun", "--job", "nightly", "--force", when="2026-05-01 12:40")
    assert [call["run_time"] for call in control.CALLS] == [at("2026-05-01 01:30")], "03:30 in Paris, today"
    assert job("nightly").next_slot == at("2026-05-02 01:30")


# --- a mark that moves a last success back asks first ----------------------------------------


def test_a_mark_before_the_last_success_says_how_many_slots_run_again_and_needs_yes(jobs):
    ran_all_day(jobs)
    before = list(Job.objects.values())
    with pytest.raises(CommandError) as refused:
        run("cronmarksuccess", "hourly", "--time", MARK_BACK)
    assert str(refused.value) == (
        "hourly: marking 2026-05-01T02:00:00+00:00 moves its last success back from 2026-05-01T12:00:00+00:00: "
        "10 slots after it will run again; add --yes to mark anyway; nothing was changed"
    )
    assert list(Job.objects.values()) == before
    assert run("cronmarksuccess", "hourly", "--time", MARK_BACK, "--yes") == [
        "hourly: marked succeeded at 2026-05-01T02:00:00+00:00; next run 2026-05-01T03:00:00+00:00; "
        "it moves its last success back from 2026-05-01T12:00:00+00:00: 10 slots after it will run again"
    ]
    control.CALLS.clear()
    tick(at("2026-05-01 12:30"))
    assert len([call for call in control.CALLS if call["run_time"]]) == 10


def test_a_mark_forward_or_of_a_new_job_does_not_ask(jobs):
    ran_all_day(jobs)
    assert run("cronmarksuccess", "hourly", "--time", "2026-05-01T12:00:00+00:00") == [
        "hourly: marked succeeded at 2026-05-01T12:00:00+00:00; next run 2026-05-01T13:00:00+00:00"
    ]


def test_the_admin_asks_before_a_mark_moves_a_last_success_back_and_then_shows_the_slots(jobs):
    ran_all_day(jobs)
    with freeze_time(at("2026-05-01 12:20")):
        client = client_for(*OPERATOR)
        form = {"action": "mark_success", "_selected_action": [job("hourly").pk], "apply": "yes"}
        asked = client.post(JOBS, {**form, "mark_time": MARK_BACK}, follow=True)
        page = asked.content.decode()
        assert "10 slots after it will run again" in page and 'name="moves_back"' in page
        assert job("hourly").last_success == at("2026-05-01 12:00"), "nothing was changed"
        done = client.post(JOBS, {**form, "mark_time": MARK_BACK, "moves_back": "on"}, follow=True)
        assert "10 slots after it will run again" in said(done)
        assert job("hourly").last_success == at(MARK_BACK[:16].replace("T", " "))
        listing = client.get(JOBS).content.decode()
        page = client.get(reverse("admin:crontabber_job_change", args=[job("hourly").pk])).content.decode()
    assert "no slots yet" not in listing + page
    assert 'class="slot-strip"' in listing and 'class="slot-grid"' in page


# --- counts and durations read naturally --------------------------------------------------


def test_counts_and_durations_read_naturally(jobs):
    assert [plural(1, "slot"), plural(2, "slot"), plural(8178, "slot")] == ["1 slot", "2 slots", "8,178 slots"]
    assert [took(0.021952), took(42.5), took(3 * 3600 + 300)] == ["0.02 s", "42.50 s", "3 h 05 min"]
    ran_all_day(jobs)
    Control.objects.filter(pk=1).update(last_tick_seconds=0.021952)
    client = client_for(*OPERATOR, "crontabber.view_control")
    page = client.get(reverse("admin:crontabber_control_changelist")).content.decode()
    assert "0.02 s" in page and "0.021952" not in page


# --- typos get a suggestion ---------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, suggestion",
    [
        ({"name": "r", "cmd": "recrod"}, "unknown management command 'recrod' (did you mean 'record'?)"),
        ({"name": "r", "cmd": "record", "frequncy": "1h"}, "unknown key (did you mean 'frequency'?)"),
        (
            {"name": "r", "cmd": "record", "timezone": "Europe/Paaris"},
            "'Europe/Paaris' is not a known IANA time zone (did you mean 'Europe/Paris'?)",
        ),
    ],
)
def test_a_registry_typo_gets_a_suggestion(settings, entry, suggestion):
    settings.CRONTABBER_JOBS = [entry]
    with pytest.raises(RegistryError, match=r".*".join(map(__import__("re").escape, suggestion.split("(")))):
        load_jobs()


def test_an_unknown_job_name_gets_a_suggestion(jobs):
    ran_all_day(jobs)
    for command in (["cronrun", "--job"], ["cronreset"], ["cronmarksuccess"], ["cronunlock"]):
        with pytest.raises(CommandError, match=r"unknown job 'hourli' \(did you mean 'hourly'\?\)"):
            run(*command, "hourli")
    with pytest.raises(CommandError, match=r"unknown job 'hourli' \(did you mean 'hourly'\?\)"):
        run("cronrerun", "hourli", "--from", "2026-05-01T10:00:00+00:00", "--to", "2026-05-01T11:00:00+00:00")
