#!/usr/bin/env python3
"""The screenshots of docs/admin.md, made from a seeded database, never by hand.

    .venv/bin/python bin/admin_screenshots.py [--out docs/images]

Seeds a new SQLite database with tests/admin_seed.py (real ticks at past instants), serves
the admin from a thread (Django's live server), and drives Debian's Chromium with
Playwright (`make chromium` installs it; never `playwright install`): the job list and a
job's page in the light and the dark theme, and the job list 800 px wide.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CRONTABBER_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
# (file, page, viewport width, colour scheme, element; None: the whole page)
SHOTS = [
    ("admin-jobs.png", "list", 1400, "light", None),
    ("admin-jobs-dark.png", "list", 1400, "dark", None),
    ("admin-jobs-800.png", "list", 800, "light", None),
    ("admin-strips.png", "list", 1400, "light", "#result_list"),
    ("admin-job.png", "job", 1400, "light", None),
    ("admin-job-dark.png", "job", 1400, "dark", None),
    ("admin-grid-dark.png", "job", 1400, "dark", ".slot-grid"),
]
GRID_JOB = "hourly-rollup"
FULL = {"full_page": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where the PNGs go")
    out = parser.parse_args().out
    with tempfile.TemporaryDirectory() as work:
        _setup_django(Path(work) / "screenshots.sqlite3")
        from django.test import override_settings

        from tests.admin_seed import REGISTRY

        with override_settings(CRONTABBER_JOBS=REGISTRY, ALLOWED_HOSTS=["127.0.0.1"]):
            url = _seed_and_serve()
            written = shoot(url, out)
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


def _setup_django(database: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop here
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    logging.disable(logging.CRITICAL)  # the seed's failures are on purpose


def _seed_and_serve() -> str:
    """Migrate and seed the database, add a superuser, start the server; its URL."""
    from django.contrib.auth.models import User
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread

    from tests.admin_seed import seed

    call_command("migrate", verbosity=0)
    seed()
    User.objects.create_superuser("operator", password="operator-pass")
    server = LiveServerThread("127.0.0.1", StaticFilesHandler)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    return f"http://127.0.0.1:{server.port}"


def shoot(url: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from crontabber.models import Job

    out.mkdir(parents=True, exist_ok=True)
    job_page = f"{url}/admin/crontabber/job/{Job.objects.get(name=GRID_JOB).pk}/change/"
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, which, width, scheme, element in SHOTS:
            # Close-ups of an element at twice the pixels; the admin's menu folded away.
            context = browser.new_context(
                viewport={"width": width, "height": 900}, color_scheme=scheme, device_scale_factor=2 if element else 1
            )
            context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
            page = context.new_page()
            page.goto(f"{url}/admin/login/?next=/admin/crontabber/job/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", "operator-pass")
            page.click("input[type=submit]")
            page.wait_for_selector("#result_list")
            if which == "job":
                page.goto(job_page)
                page.wait_for_selector(".slot-grid")
            path = out / name
            (page.locator(element) if element else page).screenshot(path=str(path), **({} if element else FULL))
            written.append(path)
            context.close()
        browser.close()
    return written


if __name__ == "__main__":
    sys.exit(main())
