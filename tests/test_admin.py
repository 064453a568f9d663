"""The admin pages (Django's test client): who may see and change what, each action, the
schedule override's validation, the hold switch, and the LogEntry every change leaves."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crontabber.engine.runner import Runner
from crontabber.models import Control, Job, Log
from tests.helpers import job
from tests.jobs import control

pytestmark = pytest.mark.django_db

REGISTRY = [
    {"name": "good", "cmd": "record", "frequency": "1h"},
    {"name": "bad", "cmd": "boom", "frequency": "1h"},
    {
        "name": "berlin",
        "cmd": "record",
        "cmd_args": ["--label", "b"],
        "frequency": "1d",
        "time": "03:00",
        "timezone": "Europe/Berlin",
    },
]
JOBS = reverse("admin:crontabber_job_changelist")
LOGS = reverse("admin:crontabber_log_changelist")
HOLD = reverse("admin:crontabber_job_hold")
RELEASE = reverse("admin:crontabber_job_release")


def change_url(name):
    return reverse("admin:crontabber_job_change", args=[job(name).pk])


def make_user(username="op", *perms, staff=True, superuser=False):
    user = User.objects.create_user(username, password="pw", is_staff=staff, is_superuser=superuser)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return user


def client_for(*perms, username="op", **kwargs):
    client = Client()
    client.force_login(make_user(username, *perms, **kwargs))
    return client


OPERATOR = (
    "crontabber.view_job",
    "crontabber.change_job",
    "crontabber.view_log",
    "crontabber.change_control",
)


@pytest.fixture
def ticked(jobs):
    """The registry, one real tick (good succeeds, bad fails), and a row no longer in the registry."""
    jobs(REGISTRY)
    Runner().tick()
    Job.objects.create(name="retired", schedule="every 5m")
    control.CALLS.clear()


@pytest.fixture
def operator(ticked):
    return client_for(*OPERATOR)


def act(client, action, *names, **extra):
    pks = [job(name).pk for name in names]
    return client.post(JOBS, {"action": action, "_selected_action": pks, **extra}, follow=True)


def entries(obj=None):
    query = LogEntry.objects.order_by("id")
    if obj is not None:
        query = query.filter(content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk))
    return [(e.user.username, e.action_flag, e.get_change_message()) for e in query]


def text(response):
    return response.content.decode()


def said(response):
    """The messages the admin showed after an action (the template capitalises them)."""
    return " | ".join(str(message) for message in response.context["messages"])


def make_due(name):
    """Move the job's grid back one step, so its next slot is due now."""
    Job.objects.filter(name=name).update(
        next_slot=F("first_run") - timedelta(hours=1), next_run=F("first_run") - timedelta(hours=1)
    )


# --- permissions -----------------------------------------------------------------------


def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(ticked):
    assert Client().get(JOBS)["Location"].startswith("/admin/login/")
    non_staff = client_for(*OPERATOR, staff=False)
    assert non_staff.get(JOBS)["Location"].startswith("/admin/login/")
    assert non_staff.post(HOLD)["Location"].startswith("/admin/login/")
    assert not Control.objects.filter(hold_all=True).exists()


def test_staff_without_the_apps_permissions_see_nothing(ticked):
    client = client_for()
    assert client.get(JOBS).status_code == 403
    assert client.get(LOGS).status_code == 403
    assert client.get(change_url("bad")).status_code == 403
    assert "crontabber" not in text(client.get("/admin/")).lower()
    assert client.post(HOLD).status_code == 403
    assert act(client, "run_now", "bad").status_code == 403
    assert job("bad").run_requested is None


def test_view_permission_shows_the_list_and_a_read_only_job_but_changes_nothing(ticked):
    client = client_for("crontabber.view_job", "crontabber.view_log")
    page = client.get(JOBS)
    assert page.status_code == 200 and "bad" in text(page)
    assert 'name="action"' not in text(page), "no actions without the change permission"
    assert 'id="hold-all"' not in text(page), "no hold button without change permission on Control"
    act(client, "run_now", "bad")
    assert job("bad").run_requested is None
    detail = client.get(change_url("bad"))
    assert detail.status_code == 200 and 'name="schedule_override"' not in text(detail)
    assert client.post(change_url("bad"), {"schedule_override": "2h"}).status_code == 403
    assert job("bad").schedule_override == ""
    assert client.post(HOLD).status_code == 403
    assert not entries()


def test_changing_jobs_does_not_grant_the_hold_switch(ticked):
    client = client_for("crontabber.view_job", "crontabber.change_job")
    page = text(client.get(JOBS))
    assert 'name="action"' in page and 'id="hold-all"' not in page
    assert client.post(HOLD).status_code == 403
    assert not Control.load().hold_all


def test_log_rows_are_read_only_even_for_a_superuser(ticked):
    client = client_for(superuser=True)
    log = Log.objects.filter(job__name="bad").first()
    detail = client.get(reverse("admin:crontabber_log_change", args=[log.pk]))
    assert detail.status_code == 200 and "RuntimeError" in text(detail) and 'name="_save"' not in text(detail)
    assert client.post(reverse("admin:crontabber_log_change", args=[log.pk]), {"outcome": "success"}).status_code == 403
    assert client.get(reverse("admin:crontabber_log_add")).status_code == 403
    assert client.post(reverse("admin:crontabber_log_delete", args=[log.pk]), {"post": "yes"}).status_code == 403
    client.post(LOGS, {"action": "delete_selected", "_selected_action": [log.pk], "post": "yes"})
    assert Log.objects.get(pk=log.pk).outcome == "failure"


def test_jobs_cannot_be_added_or_deleted_here(operator):
    assert operator.get(reverse("admin:crontabber_job_add")).status_code == 403
    assert (
        operator.post(reverse("admin:crontabber_job_delete", args=[job("good").pk]), {"post": "yes"}).status_code == 403
    )
    assert Job.objects.filter(name="good").exists()


# --- the job list ----------------------------------------------------------------------


def test_the_job_list_shows_status_schedule_errors_and_a_link_to_the_logs(operator):
    Job.objects.filter(name="berlin").update(schedule_override="13:00,18:30")
    page = text(operator.get(JOBS))
    assert "status-failing" in page and "status-ok" in page and "status-not-in-registry" in page
    assert "1: RuntimeError: boom" in page
    assert (
        "daily at 13:00,18:30 Europe/Berlin" in page
        and "(overridden; registry: every 1d at 03:00 Europe/Berlin)" in page
    )
    assert "every 1h" in page
    link = f"{LOGS}?job__id__exact={job('bad').pk}"
    assert link.replace("&", "&amp;") in page
    logs = operator.get(link)
    assert "RuntimeError: boom" in text(logs) and {log.job.name for log in logs.context["cl"].result_list} == {"bad"}


def test_a_broken_override_is_shown_as_ignored_and_a_disabled_job_as_disabled(operator):
    Job.objects.filter(name="good").update(schedule_override="25:99")
    Job.objects.filter(name="berlin").update(enabled_override=False)
    page = text(operator.get(JOBS))
    assert "ignored" in page and "25:99" in page
    assert "status-disabled" in page and "disabled by an operator" in page


def test_a_registry_mistake_is_reported_instead_of_statuses(operator, jobs):
    jobs([{"name": "x", "cmd": "nonexistent"}])
    response = operator.get(JOBS, follow=True)
    assert response.status_code == 200 and "unknown management command" in text(response)
    assert "status-registry-error" in text(response)


# --- actions ---------------------------------------------------------------------------


def test_run_now_queues_the_job_for_the_next_tick_and_does_not_run_it(operator):
    before = timezone.now()
    response = act(operator, "run_now", "good", "retired")
    assert "Queued to run on the next tick: good" in said(response)
    assert "Not in the registry, left alone: retired" in said(response)
    assert control.CALLS == [], "nothing runs inside the web request"
    assert job("good").run_requested >= before and job("retired").run_requested is None
    assert "run requested" in text(operator.get(JOBS))
    Runner().tick()
    assert len(control.CALLS) == 1 and job("good").run_requested is None
    assert entries(job("good")) == [("op", CHANGE, "Run now: queued for the next tick")]


def test_run_now_while_held_says_when_it_will_run(operator):
    Control.objects.filter(pk=1).update(hold_all=True, held_by="someone")
    assert "they run once the hold is released" in said(act(operator, "run_now", "good"))


def test_reset_asks_first_then_forgets_the_state(operator):
    page = act(operator, "reset", "bad")
    assert "Reset jobs?" in text(page) and job("bad").error_count == 1
    response = act(operator, "reset", "bad", apply="yes")
    assert "bad: reset; it runs on the next tick as a new job." in said(response)
    state = job("bad")
    assert (state.next_run, state.error_count, state.last_error, state.first_run) == (None, 0, "", None)
    assert entries(state) == [("op", CHANGE, "Reset: state forgotten; it runs on the next tick as a new job")]


def test_a_running_job_is_not_reset(operator):
    Job.objects.filter(name="bad").update(
        claimed_by="h:1:x", claimed_at=timezone.now(), claim_expires=timezone.now() + timedelta(minutes=5)
    )
    response = act(operator, "reset", "good", "bad", apply="yes")
    assert "cannot reset a running job: bad (claimed by h:1:x" in said(response)
    assert job("bad").error_count == 1 and job("good").next_run is not None and not entries()


def test_mark_success_at_a_time(operator):
    page = act(operator, "mark_success", "bad")
    assert 'name="mark_time"' in text(page) and job("bad").error_count == 1
    error = act(operator, "mark_success", "bad", apply="yes", mark_time="yesterday")
    assert "not an ISO 8601 time" in text(error) and job("bad").error_count == 1
    future = act(operator, "mark_success", "bad", apply="yes", mark_time="2999-01-01T00:00:00+00:00")
    assert "in the future" in text(future)
    marked = job("bad").first_run
    response = act(operator, "mark_success", "bad", apply="yes", mark_time=marked.isoformat())
    state = job("bad")
    assert state.last_success == marked and state.error_count == 0
    assert state.next_run == state.first_run + timedelta(hours=1)
    assert "bad: marked succeeded at" in said(response)
    assert Log.objects.filter(job=state, output__contains="marked as succeeded by op in the admin").count() == 1
    [(user, _, message)] = entries(state)
    assert user == "op" and message.startswith("Mark success: marked succeeded at ")


def test_mark_success_follows_the_schedule_override(operator):
    Job.objects.filter(name="good").update(schedule_override="30m")
    act(operator, "mark_success", "good", apply="yes", mark_time=job("good").first_run.isoformat())
    state = job("good")
    assert state.schedule == "every 30m" and state.next_run == state.first_run + timedelta(minutes=30)


def test_unlock_refuses_a_live_claim_unless_forced(operator):
    now = timezone.now()
    Job.objects.filter(name="good").update(claimed_by="h:1:x", claimed_at=now, claim_expires=now + timedelta(minutes=5))
    Log.objects.create(job=job("good"), slot=now, started_at=now, duration=0, outcome="running")
    page = act(operator, "unlock", "good")
    assert "Release the jobs" in text(page)
    refused = act(operator, "unlock", "good", apply="yes")
    assert "claim not expired" in said(refused) and job("good").claimed_by == "h:1:x"
    released = act(operator, "unlock", "good", apply="yes", force="on")
    assert "good: released the claim of h:1:x" in said(released)
    assert job("good").claimed_by == "" and not Log.objects.filter(outcome="running").exists()
    assert Log.objects.get(error_type="Unlocked").error_value == "claim of h:1:x released by op in the admin"
    assert entries(job("good")) == [("op", CHANGE, "Unlocked: released the claim of h:1:x")]


def test_enable_disable_and_back_to_the_registry(operator):
    act(operator, "disable", "good")
    assert job("good").enabled_override is False and job("good").paused_since is not None
    make_due("good")
    Runner().tick()
    assert control.CALLS == []
    asked = text(act(operator, "enable", "good"))
    assert "Enable jobs?" in asked and "fell due while it was paused" in asked and "by default it skips them" in asked
    assert job("good").enabled_override is False  # nothing changes before the operator chooses
    done = said(act(operator, "enable", "good", apply="yes", choice="catch-up"))
    assert "good: enabled;" in done and "fell due while it was paused" in done and "catching up" in done
    assert job("good").enabled_override is True and job("good").paused_since is None
    act(operator, "registry_decides", "good")
    assert job("good").enabled_override is None
    Runner().tick()
    assert len(control.CALLS) == 1
    messages = [message for _, _, message in entries(job("good"))]
    assert messages[0] == "Disabled by an operator" and messages[2] == "Enabled or not: the registry decides"
    assert messages[1].startswith("Enabled by an operator; ") and "catching up" in messages[1]
    assert "Nothing changed" in said(act(operator, "registry_decides", "good"))


def test_enable_skipping_the_paused_slots_runs_none(operator):
    act(operator, "disable", "good")
    make_due("good")
    done = said(act(operator, "enable", "good", apply="yes", choice="skip"))
    assert "skipped, none runs" in done
    Runner().tick()
    assert control.CALLS == [] and Log.objects.filter(job__name="good", outcome="paused").count() == 1


# --- the schedule override ------------------------------------------------------------------


def form(**values):
    return {"enabled_override": "", "schedule_override": "", **values}


@pytest.mark.parametrize(
    "value, message",
    [
        ("25:99", "is not a time like"),
        ("03:00,2h", "mixes times and an interval"),
        ("30m,2h", "one interval, not several"),
        ("often", "is not a frequency like"),
        ("0m", "is not a frequency like"),
    ],
)
def test_a_bad_schedule_override_is_refused_with_a_clear_error(operator, value, message):
    response = operator.post(change_url("berlin"), form(schedule_override=value))
    assert response.status_code == 200 and message in text(response)
    assert "not both" in text(response)
    assert job("berlin").schedule_override == "" and not entries()


def test_a_schedule_override_is_normalised_saved_alone_and_logged(operator):
    before = job("berlin")
    response = operator.post(change_url("berlin"), form(schedule_override=" 18:30, 13:00 "))
    assert response.status_code == 302
    after = job("berlin")
    assert after.schedule_override == "13:00,18:30"
    assert (after.next_run, after.schedule, after.error_count) == (before.next_run, before.schedule, 0)
    operator.post(change_url("berlin"), form(schedule_override="2h", enabled_override="False"))
    assert (job("berlin").schedule_override, job("berlin").enabled_override) == ("2h", False)
    operator.post(change_url("berlin"), form())
    assert (job("berlin").schedule_override, job("berlin").enabled_override) == ("", None)
    assert [message for _, _, message in entries(job("berlin"))] == [
        "schedule override: none -> 13:00,18:30",
        "enabled: registry decides -> disabled; schedule override: 13:00,18:30 -> 2h",
        "enabled: disabled -> registry decides; schedule override: 2h -> none (the registry's schedule)",
    ]


def test_the_runner_follows_an_override_set_in_the_admin(operator):
    operator.post(change_url("berlin"), form(schedule_override="30m"))
    Runner().tick()
    assert job("berlin").schedule == "every 30m"


# --- the hold switch --------------------------------------------------------------------------


def test_hold_and_release_every_runner_obeys_and_each_is_logged(operator):
    page = text(operator.get(JOBS))
    assert "Jobs run normally" in page and 'id="hold-all"' in page
    response = operator.post(HOLD, follow=True)
    assert "All jobs are held</strong> by op" in text(response) and 'id="release-all"' in text(response)
    state = Control.load()
    assert state.hold_all and state.held_by == "op" and state.held_since is not None
    make_due("good")
    Job.objects.update(run_requested=timezone.now())
    report = Runner().tick()
    assert control.CALLS == [] and "held by op" in report.held_all
    assert "already held" in said(operator.post(HOLD, follow=True))
    response = operator.post(RELEASE, follow=True)
    assert "Jobs run normally" in text(response) and not Control.load().hold_all
    Runner().tick()
    assert [call["label"] for call in control.CALLS] == ["", "b"], "good and berlin ran (bad is boom)"
    assert [(user, flag, message.split(" (")[0]) for user, flag, message in entries(Control.load())] == [
        ("op", CHANGE, "Held all jobs: no runner starts any job until released"),
        ("op", CHANGE, "Released the hold on all jobs"),
    ]


def test_hold_is_post_only_and_csrf_protected(ticked):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("op", *OPERATOR))
    assert client.get(HOLD).status_code == 405
    assert client.post(HOLD).status_code == 403, "no CSRF token"
    assert not Control.load().hold_all
    page = client.get(JOBS)
    token = page.cookies["csrftoken"].value
    assert client.post(HOLD, {"csrfmiddlewaretoken": token}).status_code == 302
    assert Control.load().hold_all


def test_the_control_row_is_read_only_and_its_history_lists_holds_and_releases(operator):
    operator.post(HOLD)
    operator.post(RELEASE)
    url = reverse("admin:crontabber_control_change", args=[1])
    page = operator.get(url)
    assert page.status_code == 200 and 'name="_save"' not in text(page)
    assert operator.post(url, {"hold_all": "on"}).status_code == 403
    assert not Control.load().hold_all
    history = text(operator.get(reverse("admin:crontabber_control_history", args=[1])))
    assert "Held all jobs" in history and "Released the hold on all jobs (held by op since" in history
    assert client_for("crontabber.view_job", username="reader").get(url).status_code == 403


def test_run_now_on_a_running_job_says_the_attempt_under_way_serves_it(operator):
    now = timezone.now()
    Job.objects.filter(name="good").update(claimed_by="h:1:x", claimed_at=now, claim_expires=now + timedelta(minutes=5))
    assert "Running now: good; the attempt under way serves the request" in said(act(operator, "run_now", "good"))
