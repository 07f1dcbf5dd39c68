#!/usr/bin/env bash
# A throwaway PostgreSQL for tests (Debian's packages; installed if missing, as root).
#   pg-test.sh start   init + start a cluster in $PG_TEST_DIR, print its URL
#   pg-test.sh stop    stop it and delete the directory
set -euo pipefail
DIR=${PG_TEST_DIR:-/tmp/overgang-pg-test}
PORT=${PG_TEST_PORT:-55432}
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"

bin_dir() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    echo "$found"
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    local bin
    bin=$(bin_dir)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        [ "$(id -u)" = 0 ] || { echo "pg-test.sh: PostgreSQL server missing; install Debian's postgresql" >&2; exit 1; }
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin=$(bin_dir)
    fi
    if [ -f "$DIR/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
        echo "$URL"; return
    fi
    rm -rf "$DIR"; mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
    as_postgres "$bin/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 >/dev/null
    as_postgres "$bin/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    echo "$URL"
}

stop() {
    local bin
    bin=$(bin_dir)
    if [ -n "$bin" ] && [ -d "$DIR" ]; then
        as_postgres "$bin/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
