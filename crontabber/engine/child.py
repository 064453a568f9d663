"""Runs one management command in its own process for a ``"process": True`` job:
``python -m crontabber.engine.child COMMAND ARGS...``. Exit status 0 on success,
75 (SKIP_EXIT_STATUS) when the command raised crontabber.SkipRun, 1 on any other error.

It inherits the runner's environment, secrets included, unless CRONTABBER_CHILD_ENV
names the variables it gets (see environment())."""

import fnmatch
import os
import sys
import traceback

# Always passed: the child must load the same settings.
ALWAYS = ("DJANGO_SETTINGS_MODULE",)
SKIP_EXIT_STATUS = 75  # sysexits' EX_TEMPFAIL: the command skipped its slot


def environment() -> dict[str, str]:
    """The environment a child starts with: the runner's whole environment, or with
    CRONTABBER_CHILD_ENV (names or shell patterns such as "LC_*") only what it names."""
    from .. import conf

    allowed = conf.get("CRONTABBER_CHILD_ENV")
    if allowed is None:
        return dict(os.environ)
    if isinstance(allowed, str):
        allowed = allowed.split(",")
    patterns = [p.strip() for p in allowed if p.strip()] + list(ALWAYS)
    return {k: v for k, v in os.environ.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def main(argv: list[str]) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from crontabber import SkipRun

    try:
        call_command(argv[0], *argv[1:])
    except SkipRun as skip:
        print(f"SkipRun: {skip}", file=sys.stderr, flush=True)
        return SKIP_EXIT_STATUS
    except CommandError as error:
        print(f"CommandError: {error}", file=sys.stderr, flush=True)
        return 1
    except Exception:
        # Printed as Python would, but not left to sys.excepthook: an SDK hooked there
        # (Sentry) would report it a second time; the runner reports the failed attempt.
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
