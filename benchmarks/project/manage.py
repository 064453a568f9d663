"""manage.py of the backfill benchmark's project (benchproj.settings); crontabber comes
from the tree measured, which the benchmark puts first on PYTHONPATH."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
