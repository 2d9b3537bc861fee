#!/usr/bin/env bash
# A private PostgreSQL cluster under the repository, run as the `postgres` OS user
# (initdb refuses root). Used by `make demo`, `make test` and `make bench`.
#
#   scripts/cluster.sh start NAME [PORT]   initialise if needed, start, print nothing
#   scripts/cluster.sh stop NAME           stop it (no error when not running)
#   scripts/cluster.sh destroy NAME        stop and delete it
#   scripts/cluster.sh env NAME            print PGHOST/PGPORT/PGUSER exports
#   scripts/cluster.sh fresh NAME PORT     destroy, start anew, print the exports
#                                          (assign them first, so that a failure stops a
#                                          set -e script: env=$(...); eval "$env")
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
cmd=${1:?usage: cluster.sh start|stop|destroy|env|fresh NAME [PORT]}
name=${2:?cluster name required}
root="$here/.clusters/$name"
data="$root/data"
run="$root/run"

as_pg() { runuser -u postgres -- "$@"; }

port_of() {
    if [ -f "$root/port" ]; then cat "$root/port"; else echo "${1:-25429}"; fi
}

case "$cmd" in
start)
    port=$(port_of "${3:-}")
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$root" "$run"
        echo "$port" > "$root/port"
        chown -R postgres:postgres "$root"
        # The repository may sit below directories postgres cannot enter.
        d="$root"; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
        as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
            --locale=C.UTF-8 >"$root/initdb.log" 2>&1 \
            || { cat "$root/initdb.log" >&2; exit 1; }
        cat >> "$data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$run'
max_connections = 120
# Headroom for the notifier workers (one per database with MCP traffic, and, in a
# burst of first commits, extras that exit at once): tests run several databases.
max_worker_processes = 16
shared_buffers = 256MB
logging_collector = off
log_min_messages = warning
CONF
    fi
    # mcp_auth's ledger and rate limiter live in shared memory (clusters made before
    # 2.3.0 get the setting on their next start).
    grep -qs "^shared_preload_libraries = 'mcp_auth'" "$data/postgresql.conf" \
        || echo "shared_preload_libraries = 'mcp_auth'" >> "$data/postgresql.conf"
    if ! as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_pg "$bindir/pg_ctl" -D "$data" -l "$root/server.log" -w -t 60 start >/dev/null \
            || { tail -20 "$root/server.log" >&2; exit 1; }
    fi
    ;;
stop)
    if [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
    ;;
destroy)
    "$0" stop "$name"
    rm -rf "$root"
    ;;
env)
    echo "export PGHOST=$run PGPORT=$(port_of) PGUSER=postgres PGBIN=$bindir"
    ;;
fresh)
    "$0" destroy "$name"
    "$0" start "$name" "${3:?fresh needs a port}"
    "$0" env "$name"
    ;;
*)
    echo "unknown command $cmd" >&2; exit 2 ;;
esac
