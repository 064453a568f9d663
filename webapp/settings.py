"""Settings of the host project, from environment variables.

DATABASE_URL   sqlite:///path (default: var/crontabber.sqlite3 in the checkout) or
               postgres://user:password@host:port/name
SECRET_KEY     required when DEBUG is off (without it the project refuses to start)
DEBUG          1/true/yes to turn on
SECURE_SSL_REDIRECT, SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE, SECURE_HSTS_SECONDS,
SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD, SECURE_PROXY_SSL_HEADER
               HTTPS behind a TLS proxy: see docs/deploy.md
TIME_ZONE      default UTC
SENTRY_DSN     turns on Sentry (Django integration; failed runs are captured by crontabber)
CRONTABBER_SENTRY_CRONS      1/true: Sentry Crons check-ins for every job
CRONTABBER_NOTIFY_EMAILS     comma-separated addresses mailed on failures (default: none)
EMAIL_HOST, EMAIL_PORT, SERVER_EMAIL   the SMTP server and sender of those mails
See docs/alerts.md.
"""

import os
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name, default=False):
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def env_int(name, default):
    value = os.environ.get(name, str(default)).strip()
    if not value.isdigit():
        sys.exit(f"{name} must be a whole number, not {value!r}")
    return int(value)


DEBUG = env_flag("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:  # one line, not a traceback: the key must never default to a public one
        sys.exit("SECRET_KEY is not set: set it to a long random string (or DEBUG=1 for development)")
    SECRET_KEY = "django-insecure-development-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]

# HTTPS, for a site behind a TLS proxy (docs/deploy.md#https): on by default with DEBUG off.
SECURE_SSL_REDIRECT = env_flag("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_flag("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_flag("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_flag("SECURE_HSTS_PRELOAD")
if not SECURE_HSTS_PRELOAD:  # asking browsers to preload the domain is its owner's decision, not a default
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
# The header by which the proxy says the request came over HTTPS; it must set or strip it.
_proxy_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto").strip()
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")
# Load balancers and probes ask for the health over plain HTTP, to the app itself.
SECURE_REDIRECT_EXEMPT = [r"^crontabber/health/$"]

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
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

try:
    DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL") or "sqlite:///var/crontabber.sqlite3")}
except ValueError:
    scheme = (os.environ.get("DATABASE_URL") or "").partition(":")[0]
    sys.exit(f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite, postgres or mysql)")
# Tests run real runner processes against the test database, so SQLite tests use a file.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    (BASE_DIR / "var").mkdir(exist_ok=True)
    # sqlite:///var/x.sqlite3 is relative to the checkout, whatever the working directory
    # (sqlite:////abs/path stays absolute: joining an absolute path replaces BASE_DIR).
    if DATABASES["default"]["NAME"] != ":memory:":
        DATABASES["default"]["NAME"] = str(BASE_DIR / DATABASES["default"]["NAME"])
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
        **DATABASES["default"].get("OPTIONS", {}),
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
CRONTABBER_INTERVAL = env_int("CRONTABBER_INTERVAL", 300)
# The bearer token that gets GET /crontabber/health/'s full report (docs/security.md).
CRONTABBER_HEALTH_TOKEN = os.environ.get("CRONTABBER_HEALTH_TOKEN", "")

# Alerts (docs/alerts.md): Sentry, Sentry Crons check-ins, e-mail.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    from crontabber import scrub

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        environment=os.environ.get("SENTRY_ENVIRONMENT") or None,
        release=os.environ.get("SENTRY_RELEASE") or None,
        send_default_pii=False,  # no users, IP addresses, cookies or request bodies
        # Locals such as db_password by their name, then every string through crontabber's patterns.
        event_scrubber=scrub.sentry_event_scrubber(),
        before_send=scrub.sentry_before_send,
    )
CRONTABBER_SENTRY_CRONS = env_flag("CRONTABBER_SENTRY_CRONS")
CRONTABBER_NOTIFY_EMAILS = [a.strip() for a in os.environ.get("CRONTABBER_NOTIFY_EMAILS", "").split(",") if a.strip()]
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", "root@localhost")
