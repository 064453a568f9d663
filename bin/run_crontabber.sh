#!/usr/bin/env bash
# The crontabber loop: one `manage.py cronrun` tick, sleep CRONTABBER_INTERVAL seconds, repeat.
#
#   CRONTABBER_INTERVAL  seconds between the end of one tick and the start of the next (300)
#   PYTHON               the interpreter (python3 on PATH)
#   CRONTABBER_MANAGE    path to manage.py (webapp/manage.py beside this script)
#
# A failing tick is logged and the loop goes on. SIGTERM or SIGINT is passed on to the
# running tick, which finishes its current job (see CRONTABBER_STOP_GRACE_SECONDS),
# releases its claim and exits; then the loop ends with status 0.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
interval=${CRONTABBER_INTERVAL:-300}
python=${PYTHON:-python3}
manage=${CRONTABBER_MANAGE:-$here/../webapp/manage.py}
stopping=0
child=""

case $interval in
    '' | *[!0-9]* | 0 | 00*)
        echo "run_crontabber: CRONTABBER_INTERVAL must be whole seconds, 1 or more, not '$interval'" >&2
        exit 2
        ;;
esac

log() {
    printf '%s run_crontabber: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

# shellcheck disable=SC2329  # invoked by the trap below
on_signal() {
    stopping=1
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        log "stopping: letting the running tick finish (pid $child)"
        kill -TERM "$child" 2>/dev/null
    fi
}
trap on_signal TERM INT

# Run a command in the background and wait for it, so a signal reaches the trap at
# once; `wait` returns early when a trapped signal arrives, so wait again until it ends.
run_and_wait() {
    "$@" &
    child=$!
    wait "$child"
    status=$?
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        status=$?
    done
    child=""
    return "$status"
}

log "started: a tick every ${interval}s ($python $manage cronrun)"
while [ "$stopping" -eq 0 ]; do
    if run_and_wait "$python" "$manage" cronrun; then
        :
    else
        log "cronrun exited with status $?; trying again in ${interval}s"
    fi
    [ "$stopping" -eq 0 ] || break
    sleep "$interval" &
    sleep_pid=$!
    wait "$sleep_pid" 2>/dev/null
    kill "$sleep_pid" 2>/dev/null
done
log "stopped"
exit 0
