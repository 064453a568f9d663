"""The backfill benchmark's project: crontabber and a no-op command, nothing else.
What varies comes from the environment: BENCH_DB (sqlite:///path or a postgres:// URL),
BENCH_JOBS (the registry, JSON)."""

import json
import os
from urllib.parse import urlsplit

SECRET_KEY = "benchmark"
DEBUG = False
ALLOWED_HOSTS = []
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "crontabber", "benchproj"]

_db = os.environ["BENCH_DB"]
if _db.startswith("sqlite:///"):
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db.removeprefix("sqlite:///")}}
else:
    _url = urlsplit(_db)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username or "postgres",
            "PASSWORD": _url.password or "",
            "HOST": _url.hostname or "127.0.0.1",
            "PORT": str(_url.port or 5432),
        }
    }
CRONTABBER_JOBS = json.loads(os.environ.get("BENCH_JOBS", "[]"))
