#!/usr/bin/env bash
# Prints the path of the newest Python interpreter of at least the given version (e.g. 3.12)
# found on this machine, or nothing (exit 1) when there is none. Looks on PATH and in
# pyenv's versions (PYENV_ROOT, `pyenv root`, ~/.pyenv), which need not be on PATH: a pyenv
# shim of a version that is not selected fails to run and is passed over.
set -uo pipefail
minimum=${1:-3.12}
min_major=${minimum%%.*}
min_minor=${minimum#*.}

candidates=()
roots=("${PYENV_ROOT:-}" "$HOME/.pyenv")
if command -v pyenv >/dev/null 2>&1; then
    roots+=("$(pyenv root 2>/dev/null)")
fi
for root in "${roots[@]}"; do
    [ -n "$root" ] && [ -d "$root/versions" ] || continue
    for python in "$root"/versions/*/bin/python3; do
        [ -x "$python" ] && candidates+=("$python")
    done
done
for minor in $(seq 20 -1 "$min_minor"); do
    if path=$(command -v "python$min_major.$minor" 2>/dev/null); then
        candidates+=("$path")
    fi
done

best="" best_minor=-1
for python in "${candidates[@]}"; do
    # The interpreter itself (not a shim) and its version, if it runs at all.
    read -r executable minor < <("$python" -c 'import sys; print(sys.executable, sys.version_info[1] if sys.version_info[0] == '"$min_major"' else -1)' 2>/dev/null) || continue
    if [ -n "${minor:-}" ] && [ "$minor" -ge "$min_minor" ] && [ "$minor" -gt "$best_minor" ] \
        && "$executable" -c 'import venv, ensurepip' 2>/dev/null; then
        best=$executable best_minor=$minor
    fi
done
[ -n "$best" ] || exit 1
echo "$best"
