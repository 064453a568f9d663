#!/usr/bin/env bash
# Starts the machine's PostgreSQL cluster when it is not accepting connections.
set -euo pipefail
host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
    exit 0
fi
echo "PostgreSQL is not running on $host:$port; starting it" >&2
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in /etc/postgresql/*; do
        pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
fi
for _ in $(seq 1 30); do
    pg_isready -q -h "$host" -p "$port" && exit 0
    sleep 1
done
echo "PostgreSQL did not come up on $host:$port" >&2
exit 1
