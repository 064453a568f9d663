"""One Django 6.1 project for crontabber, django-periodic-tasks and django-crontask: the
same no-op task (tasks.py) on django-tasks-db's database backend, scheduled by the one
named in SIDE_SCHEDULER. From the environment: SIDE_DB (a PostgreSQL URL), SIDE_CRON (the
task's schedule), SIDE_REDIS (django-crontask's lock)."""

import os

import dj_database_url

SCHEDULER = os.environ["SIDE_SCHEDULER"]  # crontabber, django-periodic-tasks or django-crontask
CRON = os.environ.get("SIDE_CRON", "* * * * *")
SCHEDULER_APPS = {
    "crontabber": "crontabber",
    "django-periodic-tasks": "django_periodic_tasks",
    "django-crontask": "crontask",
}

SECRET_KEY = "benchmark"
DEBUG = False
ALLOWED_HOSTS = []
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [  # a site's usual apps (django-periodic-tasks registers with the admin)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_tasks_db",
    SCHEDULER_APPS[SCHEDULER],
    "sidebyside",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
DATABASES = {"default": dj_database_url.parse(os.environ["SIDE_DB"])}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"handlers": [], "level": "WARNING"}}

# crontabber: the task as a job on the task workers, backfill on (missed slots run, each
# told its slot as run_time).
CRONTABBER_JOBS = [{"task": "sidebyside.tasks.tick", "cron": CRON, "backfill": True, "backend": "default"}]
# django-crontask: the Redis lock its README asks for where several instances may run.
CRONTASK = {"REDIS_URL": os.environ.get("SIDE_REDIS", "redis://127.0.0.1:6379/0")}
