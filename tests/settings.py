"""The host project's settings plus a test app of job commands."""

import json
import os
from unittest import mock

# Imported in development mode (no SECRET_KEY needed, plain HTTP for the test client), without
# leaving DEBUG in the environment that child processes and test_deploy's production runs copy.
with mock.patch.dict(os.environ, {"DEBUG": "1"}):
    from webapp.settings import *  # noqa: F403
DEBUG = False

INSTALLED_APPS = INSTALLED_APPS + ["tests.jobs"]  # noqa: F405
# Subprocess tests hand their registry to the child through the environment.
CRONTABBER_JOBS = json.loads(os.environ.get("TEST_CRONTABBER_JOBS", "[]"))
LOGGING["loggers"]["crontabber"]["handlers"] = []  # noqa: F405  pytest's caplog sees the records
# ...and any other settings (lease, grace) as JSON.
globals().update(json.loads(os.environ.get("TEST_SETTINGS", "{}")))
