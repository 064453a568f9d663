#!/usr/bin/env bash
# The container's entry point: one image, three uses (see docs/deploy.md).
#
#   crontabber          the loop, bin/run_crontabber.sh (a tick every CRONTABBER_INTERVAL s);
#                       with CRONTABBER_MIGRATE=1 it runs `manage.py migrate` first
#   web [GUNICORN_ARG...]
#                       the host project (webapp/) under gunicorn, on WEB_BIND
#                       (default 0.0.0.0:$PORT, PORT default 8000)
#   COMMAND [ARG...]    any manage.py command: migrate, cronlist, cronrun --job NAME, ...
#   manage ARG...       manage.py with these arguments, unchecked
#   help                this text
#
# The settings come from the environment (DATABASE_URL, SECRET_KEY, ...: docs/configuration.md).
# PYTHON is the interpreter (python3 on PATH), CRONTABBER_MANAGE the manage.py to use
# (webapp/manage.py beside this directory). Each use replaces this script (exec), so
# signals reach the loop or gunicorn directly.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
python=${PYTHON:-python3}
manage=${CRONTABBER_MANAGE:-$root/webapp/manage.py}
export PYTHON="$python" CRONTABBER_MANAGE="$manage"

usage() {
    cat <<'EOF'
usage: entrypoint.sh crontabber | web [GUNICORN_ARG...] | COMMAND [ARG...] | manage ARG... | help

  crontabber        run the loop: `manage.py cronrun` every CRONTABBER_INTERVAL seconds (300);
                    CRONTABBER_MIGRATE=1 runs `manage.py migrate --noinput` first
  web               serve the host project with gunicorn on WEB_BIND (0.0.0.0:$PORT, PORT 8000)
  COMMAND [ARG...]  any manage.py command, e.g. migrate, cronlist --format=json,
                    cronrun --job NAME --force, cronreset NAME, cronmarksuccess NAME
  manage ARG...     pass the arguments to manage.py as they are
  help              this text

Settings come from the environment: DATABASE_URL, SECRET_KEY, DEBUG, TIME_ZONE, ALLOWED_HOSTS,
CRONTABBER_INTERVAL, CRONTABBER_LOG_LEVEL (docs/configuration.md, docs/deploy.md).
EOF
}

migrate_first() {
    case ${CRONTABBER_MIGRATE:-0} in
        1 | true | yes | on) return 0 ;;
        *) return 1 ;;
    esac
}

# `manage.py COMMAND ARG...` in one Python process, with one check: a command manage.py does
# not know prints the usage (exit status 2) rather than Django's one-liner. When the
# commands cannot be listed (bad settings, say), the command runs and shows the real error.
run_known_command=$(
    cat <<'EOF'
import os, runpy, sys

manage, usage, *args = sys.argv[1:]
sys.argv, sys.path[0] = [manage, *args], os.path.dirname(manage)
from django.conf import settings
from django.core import management

fetch_command = management.ManagementUtility.fetch_command


def fetch_known_command(self, name):
    try:
        settings.INSTALLED_APPS  # raises if the settings are broken
        known = name in management.get_commands()
    except Exception:
        known = True
    if not known:
        print(f"entrypoint: unknown command '{name}'\n{usage}", file=sys.stderr)
        sys.exit(2)
    return fetch_command(self, name)


management.ManagementUtility.fetch_command = fetch_known_command
runpy.run_path(manage, run_name="__main__")
EOF
)

case ${1:-} in
    crontabber)
        shift
        if [ $# -gt 0 ]; then
            echo "entrypoint: crontabber takes no arguments (got: $*)" >&2
            usage >&2
            exit 2
        fi
        if migrate_first; then
            "$python" "$manage" migrate --noinput
        fi
        exec "$root/bin/run_crontabber.sh"
        ;;
    web)
        shift
        # No control socket: it would go to $HOME/.gunicorn, which the image's user cannot write.
        exec "$python" -m gunicorn webapp.wsgi:application \
            --chdir "$root" \
            --bind "${WEB_BIND:-0.0.0.0:${PORT:-8000}}" \
            --access-logfile - \
            --no-control-socket \
            "$@"
        ;;
    manage)
        shift
        exec "$python" "$manage" "$@"
        ;;
    help | -h | --help)
        usage
        exit 0
        ;;
    '' | -*)
        usage >&2
        exit 2
        ;;
    *)
        exec "$python" -c "$run_known_command" "$manage" "$(usage)" "$@"
        ;;
esac
