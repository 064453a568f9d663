"""The host project's settings plus a test app of job commands."""

import json
import os
import sys
from importlib.util import find_spec
from unittest import mock

# Imported in development mode (no SECRET_KEY needed, plain HTTP for the test client), without
# leaving DEBUG in the environment that child processes and test_deploy's production runs copy.
with mock.patch.dict(os.environ, {"DEBUG": "1"}):
    from webapp.settings import *  # noqa: F403
DEBUG = False

INSTALLED_APPS = INSTALLED_APPS + ["tests.jobs"]  # noqa: F405
# Subprocess tests hand their registry to the child through the environment; the benchmarks'
# larger ones (past the kernel's 128 KiB limit on one variable) through a JSON file it names.
if os.environ.get("TEST_CRONTABBER_JOBS_FILE"):
    with open(os.environ["TEST_CRONTABBER_JOBS_FILE"]) as _registry:
        CRONTABBER_JOBS = json.load(_registry)
else:
    CRONTABBER_JOBS = json.loads(os.environ.get("TEST_CRONTABBER_JOBS", "[]"))
LOGGING["loggers"]["crontabber"]["handlers"] = []  # noqa: F405  pytest's caplog sees the records
# Django's Tasks framework (docs/tasks.md): Django 6's own, or the django-tasks backport on
# 5.2; the database backend's app for the real-worker tests. "default" runs tasks inline.
if find_spec("django_tasks_db"):
    TASKS_ROOT = "django.tasks" if find_spec("django.tasks") else "django_tasks"
    INSTALLED_APPS += ["django_tasks_db"] + ([] if TASKS_ROOT == "django.tasks" else ["django_tasks"])
    TASKS = {
        "default": {"BACKEND": f"{TASKS_ROOT}.backends.immediate.ImmediateBackend"},
        "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    }


def _own_redis_database(server="redis://127.0.0.1:6379") -> str:
    """A Redis database (1 to 15) of this test run's own, claimed in database 0 until the run
    ends (or six hours pass), so that two checkouts testing side by side never share a
    queue; the child processes of the run inherit it through the environment."""
    import atexit

    import redis

    owner = f"{os.uname().nodename}:{os.getpid()}:{os.getcwd()}"
    try:
        claims = redis.Redis.from_url(f"{server}/0", socket_connect_timeout=2)
        for number in range(1, 16):
            key = f"crontabber-tests:redis-db:{number}"
            if claims.set(key, owner, nx=True, ex=6 * 3600):
                atexit.register(lambda held=key: claims.get(held) == owner.encode() and claims.delete(held))
                return f"{server}/{number}"
    except redis.exceptions.RedisError:
        pass  # no Redis: the RQ tests skip
    return f"{server}/15"


# django-tasks-rq: RQ on the machine's Redis (tests/test_task_rq.py), in a database of its own.
if find_spec("django_tasks_rq"):
    INSTALLED_APPS += ["django_rq"]
    if "pytest" in sys.modules and "CRONTABBER_TEST_REDIS_URL" not in os.environ:  # the run itself, not a child
        os.environ["CRONTABBER_TEST_REDIS_URL"] = _own_redis_database()
    RQ_QUEUES = {"default": {"URL": os.environ.get("CRONTABBER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")}}
    TASKS["rq"] = {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}

# Celery (crontabber.backends.celery, tests/test_task_celery.py): RabbitMQ's queues named for
# this checkout, results in a Redis database of this run's own.
if find_spec("celery") and find_spec("django_tasks_db"):
    import hashlib

    if "pytest" in sys.modules and "CRONTABBER_TEST_CELERY_RESULTS" not in os.environ:
        os.environ["CRONTABBER_TEST_CELERY_RESULTS"] = _own_redis_database()
    CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    CELERY_RESULT_BACKEND = os.environ.get("CRONTABBER_TEST_CELERY_RESULTS", "redis://127.0.0.1:6379/14")
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
    CHECKOUT_QUEUE_PREFIX = f"crontabber-tests-{hashlib.sha1(os.path.dirname(__file__).encode()).hexdigest()[:8]}-"
    TASKS["celery"] = {
        "BACKEND": "crontabber.backends.celery.CeleryBackend",
        "OPTIONS": {"QUEUE_PREFIX": CHECKOUT_QUEUE_PREFIX},
    }

# ...and any other settings (lease, grace) as JSON.
globals().update(json.loads(os.environ.get("TEST_SETTINGS", "{}")))
