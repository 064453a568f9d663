#!/usr/bin/env bash
# The legs of `make test`, in lanes that run side by side; the legs of one lane run one
# after another. Each argument is a lane: the names of its legs (`make test-<leg>`),
# separated by spaces:
#
#   bin/test_legs.sh "sqlite postgres" "mariadb django6" container
#
# A leg's output goes to var/test-logs/<leg>.log; when the leg ends, one line says how it
# went (pytest's summary and its time), and a leg that failed has its log printed whole.
# Exit status: 0 when every leg passed. The legs share no state on the servers: each has
# its own databases (the Makefile names them), Redis database (tests/settings.py claims
# one per run) and files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

logs=var/test-logs
mkdir -p "$logs"
make=${MAKE:-make}

# The last line pytest (or the leg) printed that says how it ended, without its rule.
summary() {
    local line
    line=$(grep -E '^=+ .* in [0-9.]+s' "$1" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//') || true
    echo "${line:-$(tail -n 1 "$1")}"
}

run_leg() {
    local leg=$1 log=$logs/$1.log started=$SECONDS status=0 outcome=passed
    "$make" --no-print-directory "test-$leg" >"$log" 2>&1 </dev/null || status=$?
    [ "$status" -eq 0 ] || outcome="FAILED (exit status $status)"
    # One block under a lock, so that legs ending at once do not interleave.
    {
        if [ "$status" -ne 0 ]; then
            echo "======== test-$leg failed; its log, $log:"
            cat "$log"
            echo "======== end of $log"
        fi
        printf 'test-%-10s %s in %d s: %s\n' "$leg" "$outcome" $((SECONDS - started)) "$(summary "$log")"
    } | flock "$logs" cat
    return "$status"
}

run_lane() {
    local leg status=0
    for leg in "$@"; do
        run_leg "$leg" || status=1
    done
    return "$status"
}

pids=()
for lane in "$@"; do
    # shellcheck disable=SC2086  # a lane is its legs' names, split on spaces
    run_lane $lane &
    pids+=($!)
done
# Ctrl-C reaches the running legs; the lanes must not go on to their next legs.
trap 'kill "${pids[@]}" 2>/dev/null; exit 130' INT TERM
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
echo "make test: $([ "$status" -eq 0 ] && echo "every leg passed" || echo "a leg FAILED") in ${SECONDS} s"
exit "$status"
