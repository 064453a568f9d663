"""manage.py of the benchmarks' projects: the backfill one (benchproj.settings, the default)
and the side-by-side one (DJANGO_SETTINGS_MODULE=sidebyside.settings); crontabber comes from
the tree measured, which the benchmark puts first on PYTHONPATH."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
