"""Settings of the host project, from environment variables.

DATABASE_URL   sqlite:///path (default: var/crontabber.sqlite3 in the checkout) or
               postgres://user:password@host:port/name
SECRET_KEY     required when DEBUG is off
DEBUG          1/true/yes to turn on
TIME_ZONE      default UTC
SENTRY_DSN     turns on Sentry (Django integration; failed runs are captured by crontabber)
CRONTABBER_SENTRY_CRONS      1/true: Sentry Crons check-ins for every job
CRONTABBER_NOTIFY_EMAILS     comma-separated addresses mailed on failures (default: none)
EMAIL_HOST, EMAIL_PORT, SERVER_EMAIL   the SMTP server and sender of those mails
See docs/alerts.md.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name, default=False):
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def database_from_url(url):
    """A Django DATABASES entry from a URL (sqlite:///path, postgres://..., mysql://...)."""
    parts = urlsplit(url)
    engines = {
        "sqlite": "django.db.backends.sqlite3",
        "postgres": "django.db.backends.postgresql",
        "postgresql": "django.db.backends.postgresql",
        "mysql": "django.db.backends.mysql",
    }
    if parts.scheme not in engines:
        raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r} (use sqlite, postgres or mysql)")
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        name = path if path in (":memory:", "") or os.path.isabs(path) else str(BASE_DIR / path)
        return {"ENGINE": engines["sqlite"], "NAME": name or ":memory:"}
    return {
        "ENGINE": engines[parts.scheme],
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


DEBUG = env_flag("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "insecure-development-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crontabber",
    "webapp.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": database_from_url(os.environ.get("DATABASE_URL", "sqlite:///var/crontabber.sqlite3")),
}
# Tests run real runner processes against the test database, so SQLite tests use a file.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    (BASE_DIR / "var").mkdir(exist_ok=True)
    # Named after the database, so test runs against different files do not collide.
    _db = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / "var" / f"test-{_db.stem if _db.stem != ':memory:' else 'memory'}.sqlite3")
    }
    # WAL: readers do not block the writer, and a commit costs one fsync, not several;
    # IMMEDIATE: a writing transaction takes the lock at BEGIN instead of failing later.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

USE_TZ = True
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
LANGUAGE_CODE = "en-us"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "crontabber": {"handlers": ["console"], "level": os.environ.get("CRONTABBER_LOG_LEVEL", "INFO")},
    },
}

# The job registry: see docs/configuration.md.
CRONTABBER_JOBS = [
    {
        # Hourly, backfilled: every missed hour runs, oldest first, with --run-time.
        "name": "demo-hourly-report",
        "cmd": "demo_hourly_report",
        "cron": "0 * * * *",
        "backfill": True,
        "max_backfill": 48,
    },
    {
        # Every 5 minutes from its first run, told when it last succeeded.
        "name": "demo-sync",
        "cmd": "demo_sync",
        "frequency": "5m",
        "last_success": True,
    },
    {
        # Django's own upkeep, daily at a fixed wall time.
        "cmd": "clearsessions",
        "frequency": "1d",
        "time": "03:30",
    },
]
CRONTABBER_INTERVAL = int(os.environ.get("CRONTABBER_INTERVAL", "300"))

# Alerts (docs/alerts.md): Sentry, Sentry Crons check-ins, e-mail.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        environment=os.environ.get("SENTRY_ENVIRONMENT") or None,
        release=os.environ.get("SENTRY_RELEASE") or None,
        send_default_pii=False,
    )
CRONTABBER_SENTRY_CRONS = env_flag("CRONTABBER_SENTRY_CRONS")
CRONTABBER_NOTIFY_EMAILS = [a.strip() for a in os.environ.get("CRONTABBER_NOTIFY_EMAILS", "").split(",") if a.strip()]
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", "root@localhost")
