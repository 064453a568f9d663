"""The host project's settings (webapp/settings.py) as production gets them from the
environment: a required SECRET_KEY, `check --deploy` clean, DATABASE_URL through
dj-database-url. Each case is a real manage.py or Python process.

Database-independent, so it runs in the SQLite suite only.
"""

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.db import connection

from tests.helpers import ROOT

if connection.vendor == "postgresql":
    pytest.skip("database-independent; runs in the SQLite suite only", allow_module_level=True)

ENV_EXAMPLE = ROOT / "docker" / "webapp.env.example"
# Variables of the test run that would change what the host project's settings read.
DROPPED = ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "TEST_CRONTABBER_JOBS", "TEST_SETTINGS", "DEBUG", "SECRET_KEY")


def production_env(tmp_path, **extra):
    """docker/webapp.env.example, as docs/deploy.md tells operators to fill it in."""
    env = {key: value for key, value in os.environ.items() if key not in DROPPED}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",  # the example's PostgreSQL is not here
    )
    env.update(extra)
    return {key: value for key, value in env.items() if value is not None}


def manage(*args, env):
    return subprocess.run(
        [sys.executable, str(ROOT / "webapp" / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def settings_of(env, *names):
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    env = {**env, "DJANGO_SETTINGS_MODULE": "webapp.settings", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_passes_with_no_warning_in_the_documented_production_environment(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_each_https_setting_comes_from_the_environment(tmp_path):
    off = dict.fromkeys(
        ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_INCLUDE_SUBDOMAINS"), "0"
    )
    result = manage("check", "--deploy", env=production_env(tmp_path, **off))
    for warning in ("W008", "W012", "W016", "W005"):
        assert f"security.{warning}" in result.stderr, result.stderr
    result = manage("check", "--deploy", env=production_env(tmp_path, SECURE_HSTS_SECONDS="0"))
    assert "security.W004" in result.stderr
    env = production_env(tmp_path, SECURE_HSTS_PRELOAD="1", SECURE_PROXY_SSL_HEADER="X-Scheme")
    values = settings_of(env, "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER", "SILENCED_SYSTEM_CHECKS")
    assert values == {
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_SCHEME", "https"],
        "SILENCED_SYSTEM_CHECKS": [],
    }


def test_the_documented_defaults_behind_a_tls_proxy(tmp_path):
    names = (
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_REDIRECT_EXEMPT",
        "X_FRAME_OPTIONS",
    )
    values = settings_of(production_env(tmp_path), *names, "MIDDLEWARE")
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in values.pop("MIDDLEWARE")
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_REDIRECT_EXEMPT": ["^crontabber/health/$"],
        "X_FRAME_OPTIONS": "DENY",
    }
    # Development: plain HTTP, no HSTS.
    dev = settings_of(production_env(tmp_path, DEBUG="1", SECRET_KEY=None), *names[:5])
    assert dev == dict(zip(names[:5], (False, False, False, 0, False)))


def test_without_a_secret_key_production_refuses_to_start_in_one_line(tmp_path):
    result = manage("check", env=production_env(tmp_path, SECRET_KEY=None))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "SECRET_KEY is not set: set it to a long random string (or DEBUG=1 for development)"
    ]


def test_development_falls_back_to_an_insecure_key_that_check_deploy_flags(tmp_path):
    env = production_env(tmp_path, SECRET_KEY=None, DEBUG="1")
    assert settings_of(env, "SECRET_KEY")["SECRET_KEY"].startswith("django-insecure-")
    assert "security.W009" in manage("check", "--deploy", env=env).stderr


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///var/x.sqlite3", {"ENGINE": "django.db.backends.sqlite3", "NAME": str(ROOT / "var" / "x.sqlite3")}),
        ("sqlite:////tmp/abs.sqlite3", {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/abs.sqlite3"}),
        (
            "postgres://app:p%40ss@db.example:6543/site?sslmode=require",
            {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "site",
                "USER": "app",
                "PASSWORD": "p@ss",
                "HOST": "db.example",
                "PORT": 6543,
                "OPTIONS": {"sslmode": "require"},
            },
        ),
    ],
)
def test_database_url(tmp_path, url, expected):
    database = settings_of(production_env(tmp_path, DATABASE_URL=url), "DATABASES")["DATABASES"]["default"]
    assert {key: database.get(key) for key in expected} == expected
    if expected["ENGINE"].endswith("sqlite3"):
        # Tests get their own file beside the others; WAL and IMMEDIATE transactions as always.
        assert database["TEST"]["NAME"] == str(ROOT / "var" / f"test-{url.rsplit('/', 1)[1].split('.')[0]}.sqlite3")
        assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("DATABASE_URL", "oracle+nope://x", "DATABASE_URL: unsupported scheme 'oracle+nope'"),
        ("SECURE_HSTS_SECONDS", "a year", "SECURE_HSTS_SECONDS must be a whole number, not 'a year'"),
    ],
)
def test_a_bad_variable_is_one_line(tmp_path, name, value, message):
    result = manage("check", env=production_env(tmp_path, **{name: value}))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(message)
