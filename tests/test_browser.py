"""The admin in a real browser: headless Chromium (Debian's package) driven by Playwright,
against the webapp served by pytest-django's live_server. An operator logs in, sees a
failing job, runs it now, holds all jobs and releases them.

Never `playwright install`: the browser is the system's /usr/bin/chromium (`make
chromium` installs it). Without it these tests are skipped, saying why.
"""

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from crontabber.engine.runner import Runner
from crontabber.models import Control, Job, Log
from tests import admin_seed
from tests.helpers import tick

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


# --- the slot strip and grid, a re-run, the docs' screenshots --------------------------------


def log_in(page, live_server, path="/admin/crontabber/job/"):
    page.goto(f"{live_server.url}/admin/login/?next={path}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}{path}")


@pytest.mark.slow
def test_the_strip_and_grid_show_successes_failures_a_backlog_and_a_running_attempt(live_server, page, operator, jobs):
    jobs(admin_seed.REGISTRY)
    hour = admin_seed.seed()
    log_in(page, live_server)

    rollup = row(page, "hourly-rollup")
    expect(rollup.locator(".slot-strip > .slot")).to_have_count(24)
    expect(rollup.locator("a.slot-success")).to_have_count(17)
    expect(rollup.locator(".slot-backlog")).to_have_count(6)  # behind the failure: its next 6 hours
    failure = rollup.locator("a.slot-failure")
    expect(failure).to_have_text("✗")
    slot = (hour - timedelta(hours=6)).strftime("%Y-%m-%d %H:%M UTC")
    expect(failure).to_have_attribute("title", re.compile(rf"^{slot}: failure \(attempt 1, [\d.]+ s\): CommandError$"))
    expect(row(page, "search-reindex").locator("a.slot-running")).to_have_count(1)
    expect(row(page, "sync-feed").locator(".slot-coalesced").first).to_be_visible()

    # Light and dark: the theme's colours, the same symbols.
    colour = "getComputedStyle(document.querySelector('#result_list a.slot-success')).backgroundColor"
    assert page.evaluate(colour) == "rgb(46, 125, 50)"
    page.emulate_media(color_scheme="dark")
    page.reload()
    assert page.evaluate(colour) == "rgb(102, 187, 106)"
    page.emulate_media(color_scheme="light")

    # 800 px: every row's name, status, strip, next run and errors within the screen.
    page.set_viewport_size({"width": 800, "height": 900})
    for column in ("field-name", "field-status", "field-slot_strip", "field-next_run_shown", "field-errors"):
        box = rollup.locator(f".{column}").bounding_box()
        assert box["width"] > 0 and box["x"] + box["width"] <= 800, (column, box)
    page.set_viewport_size({"width": 1400, "height": 900})

    # A cell opens its attempt.
    failure.click()
    expect(page.locator(".field-error_value")).to_contain_text("failing on purpose")

    # The job's page: its slots since its first run, each bar its duration to scale.
    page.goto(f"{live_server.url}/admin/crontabber/job/{Job.objects.get(name='hourly-rollup').pk}/change/")
    columns = page.locator(".slot-grid .slot-column")
    expect(columns).to_have_count(31)
    heights = page.locator(".slot-grid .slot-bar").evaluate_all(
        "bars => bars.reverse().map(bar => bar.getBoundingClientRect().height)"  # shown oldest left
    )
    attempts = Log.objects.filter(job__name="hourly-rollup").order_by("slot", "started_at")
    latest = {log.slot: log.duration for log in attempts}  # a retried slot: its latest attempt
    expected = [96 * latest[slot] / max(latest.values()) for slot in sorted(latest)]
    assert heights[: len(expected)] == pytest.approx(expected, abs=1.0)
    expect(page.locator("a.latest-failure")).to_contain_text("started")
    page.locator("a.latest-failure").click()
    expect(page.locator(".field-error_type")).to_contain_text("CommandError")


def test_a_rerun_from_the_admin_runs_the_chosen_slots(live_server, page, operator, jobs):
    jobs([{"name": "hourly-rollup", "cmd": "record", "frequency": "1h", "backfill": True}])
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for hours in range(6, 0, -1):
        tick(hour - timedelta(hours=hours))
    chosen = [hour - timedelta(hours=4), hour - timedelta(hours=3)]
    log_in(page, live_server)

    row(page, "hourly-rollup").locator("input.action-select").check()
    page.select_option("select[name=action]", "rerun")
    page.click("button[name=index]")
    page.fill("#id_start", chosen[0].strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_end", chosen[-1].strftime("%Y-%m-%dT%H:%M"))
    page.click("input[type=submit][value='Re-run']")
    expect(page.locator("ul.messagelist")).to_contain_text(
        f"Hourly-rollup: 2 slots from {chosen[0]:%Y-%m-%d %H:%M} UTC to {chosen[1]:%Y-%m-%d %H:%M} UTC re-run"
    )
    assert Log.objects.filter(attempt=2).count() == 0, "nothing ran in the web request"

    Runner(out=io.StringIO()).tick()  # the next tick
    again = Log.objects.filter(job__name="hourly-rollup", attempt=2).order_by("slot")
    assert [(log.slot, log.outcome) for log in again] == [(slot, "success") for slot in chosen]
    page.reload()
    for slot in chosen:
        cell = row(page, "hourly-rollup").locator(f"a.slot[title^='{slot:%Y-%m-%d %H:%M} UTC']")
        expect(cell).to_have_attribute("title", re.compile(r"success \(attempt 2,"))


@pytest.mark.slow
def test_the_screenshots_of_the_docs_are_made_by_a_script(tmp_path):
    script = Path(__file__).resolve().parent.parent / "bin" / "admin_screenshots.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    widths = {}
    for path in tmp_path.glob("*.png"):
        header = path.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        widths[path.name] = int.from_bytes(header[16:20], "big")
    assert widths["admin-jobs.png"] == 1400 and widths["admin-jobs-800.png"] == 800
    assert {"admin-jobs-dark.png", "admin-job.png", "admin-job-dark.png", "admin-strips.png"} <= set(widths)


def test_the_job_page_lists_its_schedule_changes_with_who_made_them(live_server, page, operator, jobs):
    jobs([{"name": "hourly", "cmd": "record", "cron": "0 * * * *", "timezone": "Europe/Berlin"}])
    tick(timezone.now() - timedelta(hours=2))
    jobs([{"name": "hourly", "cmd": "record", "cron": "30 * * * *", "timezone": "Europe/Berlin"}])
    tick(timezone.now() - timedelta(hours=1))  # a deploy changed the schedule
    log_in(page, live_server, f"/admin/crontabber/job/{Job.objects.get().pk}/change/")
    page.fill("#id_schedule_override", "06:00,18:00")
    page.click("input[name=_continue]")
    changes = page.locator("table.schedule-changes tbody tr")
    expect(changes).to_have_count(2)
    expect(changes.nth(0)).to_contain_text("override")
    expect(changes.nth(0)).to_contain_text("daily at 06:00,18:00 Europe/Berlin")
    expect(changes.nth(0)).to_contain_text("operator")
    expect(changes.nth(1)).to_contain_text("cron 30 * * * * Europe/Berlin")
    expect(changes.nth(1)).to_contain_text("a deploy")
    page.locator("table.schedule-changes").screenshot(path=str(SCREENSHOT.with_name("crontabber-changes.png")))
