"""The admin in a real browser: headless Chromium (Debian's package) driven by Playwright,
against the webapp served by pytest-django's live_server. An operator logs in, sees a
failing job, runs it now, holds all jobs and releases them.

Never `playwright install`: the browser is the system's /usr/bin/chromium (`make
chromium` installs it). Without it these tests are skipped, saying why.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType

from crontabber.models import Control, Job, Log
from crontabber.runner import Runner

CHROMIUM = os.environ.get("CRONTABBER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")
if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's chromium package (`make chromium`, as root) "
        "to run the browser tests",
        allow_module_level=True,
    )

expect = sync_api.expect
pytestmark = pytest.mark.django_db(transaction=True)

REGISTRY = [
    {"name": "nightly-export", "cmd": "boom", "frequency": "1h"},
    {"name": "sync-feed", "cmd": "record", "frequency": "5m"},
    {
        "name": "daily-report",
        "cmd": "record",
        "cmd_args": ["--label", "daily"],
        "frequency": "1d",
        "time": "03:30",
    },
]
PERMISSIONS = ["view_job", "change_job", "view_log", "change_control"]
SCREENSHOT = Path(tempfile.gettempdir()) / "crontabber-admin-jobs.png"


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an asyncio loop in this thread; the test's own ORM calls
    # between browser steps would otherwise be refused as "async unsafe".
    with pytest.MonkeyPatch.context() as patch, sync_api.sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def operator(db):
    user = User.objects.create_user("operator", password="s3cret-pass", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="crontabber", codename__in=PERMISSIONS))
    return user


def row(page, name):
    return page.locator("#result_list tbody tr", has_text=name)


def test_operator_logs_in_sees_a_failing_job_runs_it_now_holds_and_releases(live_server, page, operator, jobs):
    started = time.monotonic()
    jobs(REGISTRY)
    Runner().tick()  # nightly-export fails; the others succeed
    Job.objects.filter(name="daily-report").update(schedule_override="06:00,18:00")
    Job.objects.create(name="retired-job", schedule="every 10m")

    # Log in.
    page.goto(f"{live_server.url}/admin/crontabber/job/")
    expect(page).to_have_url(f"{live_server.url}/admin/login/?next=/admin/crontabber/job/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/crontabber/job/")

    # The failing job, and the others' statuses and schedules.
    failing = row(page, "nightly-export")
    expect(failing.locator(".job-status")).to_have_text("failing")
    expect(failing).to_contain_text("1: RuntimeError: boom")
    expect(row(page, "sync-feed").locator(".job-status")).to_have_text("ok")
    expect(row(page, "retired-job").locator(".job-status")).to_have_text("not in registry")
    expect(row(page, "daily-report")).to_contain_text("(overridden; registry: every 1d at 03:30 UTC)")
    expect(page.locator("#crontabber-hold")).to_contain_text("Jobs run normally")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Run it now: queued for the next tick, not run inside the request.
    failing.locator("input.action-select").check()
    page.select_option("select[name=action]", "run_now")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Queued to run on the next tick: nightly-export")
    expect(row(page, "nightly-export")).to_contain_text("run requested")
    assert Job.objects.get(name="nightly-export").run_requested is not None
    assert Log.objects.filter(job__name="nightly-export").count() == 1, "nothing ran in the web request"

    Runner().tick()  # the next tick serves the request
    page.reload()
    expect(row(page, "nightly-export")).to_contain_text("2: RuntimeError: boom")
    expect(row(page, "nightly-export")).not_to_contain_text("run requested")
    row(page, "nightly-export").locator("a.job-logs").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator("#result_list tbody .outcome-failure")).to_have_count(2)

    # Hold all jobs: every runner obeys; then release.
    page.goto(f"{live_server.url}/admin/crontabber/job/")
    page.click("#hold-all")
    expect(page.locator("#crontabber-hold")).to_contain_text("All jobs are held by operator")
    assert Control.load().hold_all and Control.load().held_by == "operator"
    Job.objects.update(run_requested=Control.load().held_since)
    assert "held by operator" in Runner().tick().held_all
    assert Log.objects.filter(job__name="nightly-export").count() == 2

    page.click("#release-all")
    expect(page.locator("#crontabber-hold")).to_contain_text("Jobs run normally")
    expect(page.locator("#hold-all")).to_be_visible()
    assert not Control.load().hold_all

    changes = LogEntry.objects.filter(user=operator).order_by("id")
    expected = [
        (Job, "Run now: queued"),
        (Control, "Held all jobs"),
        (Control, "Released the hold on all jobs (held by operator"),
    ]
    assert len(changes) == len(expected)
    for entry, (model, message) in zip(changes, expected, strict=True):
        assert entry.content_type == ContentType.objects.get_for_model(model)
        assert entry.get_change_message().startswith(message)
    print(f"browser flow took {time.monotonic() - started:.1f} s; screenshot: {SCREENSHOT}")


def test_a_view_only_user_sees_the_jobs_but_no_controls(live_server, page, jobs):
    jobs(REGISTRY)
    Runner().tick()
    viewer = User.objects.create_user("viewer", password="s3cret-pass", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(content_type__app_label="crontabber", codename__in=["view_job", "view_log"])
    )
    page.goto(f"{live_server.url}/admin/login/?next=/admin/crontabber/job/")
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    expect(row(page, "nightly-export").locator(".job-status")).to_have_text("failing")
    expect(page.locator("#crontabber-hold")).to_contain_text("Jobs run normally")
    expect(page.locator("#hold-all")).to_have_count(0)
    expect(page.locator("select[name=action]")).to_have_count(0)
