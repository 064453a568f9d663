#!/usr/bin/env bash
# Starts the machine's MariaDB server when it is not accepting connections (the MariaDB leg
# of `make test`; see docs/operations.md for the supported versions).
set -euo pipefail
host=${MYSQL_HOST:-127.0.0.1}
port=${MYSQL_PORT:-3306}
user=${MYSQL_USER:-root}

alive() {
    # "Access denied" still means a server is there: the tests then say what is wrong.
    mariadb-admin --host="$host" --port="$port" --user="$user" --connect-timeout=2 ping >/dev/null 2>&1 ||
        mariadb-admin --host="$host" --port="$port" --user="$user" --connect-timeout=2 ping 2>&1 | grep -q "Access denied"
}

if ! command -v mariadb-admin >/dev/null; then
    echo "mariadb-admin not found: is MariaDB installed (apt: mariadb-server)?" >&2
    exit 1
fi
if alive; then
    exit 0
fi
echo "MariaDB is not running on $host:$port; starting it" >&2
if [ -x /etc/init.d/mariadb ]; then
    service mariadb start >/dev/null 2>&1 || /etc/init.d/mariadb start || true
fi
if ! alive && command -v mariadbd >/dev/null; then
    # No init script (or it failed): the server itself, in the background, as its user.
    install -d -o mysql -g mysql /run/mysqld 2>/dev/null || mkdir -p /run/mysqld
    setsid mariadbd --user=mysql >/dev/null 2>&1 < /dev/null &
fi
for _ in $(seq 1 30); do
    alive && exit 0
    sleep 1
done
echo "MariaDB did not come up on $host:$port" >&2
exit 1
