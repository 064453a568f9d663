#!/usr/bin/env bash
# The entry point of the stand-in PostgreSQL image (Containerfile beside this file): on a
# first start (PGDATA empty) it makes the cluster with the superuser POSTGRES_USER
# (postgres) and its password POSTGRES_PASSWORD, and the database POSTGRES_DB
# (POSTGRES_USER), as the official image does: initdb, then a temporary server on the Unix
# socket alone, then that server is stopped and the real one started, listening on every
# address with scram-sha-256 passwords. Run as root, it gives PGDATA to the postgres user
# and runs itself again as that user. STANDIN_INIT_SECONDS keeps the temporary server up
# that long, as the official image's is while it runs /docker-entrypoint-initdb.d.
set -Eeuo pipefail

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "docker-entrypoint: POSTGRES_PASSWORD is not set (the official image refuses too)" >&2
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    {
        echo "listen_addresses = '*'"
        echo "password_encryption = 'scram-sha-256'"
    } >>"$PGDATA/postgresql.conf"
    echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"

    # The temporary server: the Unix socket alone, so nobody outside connects before the end.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username="$user" --no-password --dbname=postgres \
            --set=db="$db" <<<'CREATE DATABASE :"db";' >/dev/null
    fi
    sleep "${STANDIN_INIT_SECONDS:-0}"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "docker-entrypoint: PostgreSQL init process complete; ready for start up."
fi

exec "$@"
