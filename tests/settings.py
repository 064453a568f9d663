"""The host project's settings plus a test app of job commands."""

import json
import os

from webapp.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.jobs"]  # noqa: F405
# Subprocess tests hand their registry to the child through the environment.
CRONTABBER_JOBS = json.loads(os.environ.get("TEST_CRONTABBER_JOBS", "[]"))
LOGGING["loggers"]["crontabber"]["handlers"] = []  # noqa: F405  pytest's caplog sees the records
# ...and any other settings (lease, grace) as JSON.
globals().update(json.loads(os.environ.get("TEST_SETTINGS", "{}")))
