#!/usr/bin/env bash
# Installing the library again while the server runs (issue 18, item 5): pooled
# backends keep calling while the same build is installed again and again. Before,
# `make install` rewrote mcp_auth.so in place, and a pooled backend once died with
# "unrecognized function API version", signal 11, and PostgreSQL restarted every
# backend of every tenant. scripts/install.sh renames the new file into place, so no
# backend ever reads a half-written library. REINSTALL_IN_PLACE=1 copies in place
# instead, the old way, to see this test fail.
set -euo pipefail
cluster=reinstall
source "$(dirname "$0")/../cluster_tap.sh" "${REINSTALL_PORT:-25441}"
tenant=7e000000-0000-4000-8000-00000000007e
libdir=$("$PGBIN/pg_config" --pkglibdir 2>/dev/null || "${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --pkglibdir)
work=$(mktemp -d)
trap 'scripts/cluster.sh stop "$cluster"; rm -rf "$work"' EXIT
cp "$libdir/mcp_auth.so" "$work/same-build.so"

"${psql[@]}" -d postgres -c "CREATE DATABASE reinstall"
"${psql[@]}" -d reinstall -c "CREATE EXTENSION mcp_auth" -c "CREATE EXTENSION mcp_mes" \
    -c "SELECT mes_seed_demo('$tenant', 5)" >/dev/null
key=$("${psql[@]}" -d reinstall -c "SET mcp_auth.bcrypt_cost = 4;
    SELECT api_key FROM generate_mcp_key('$tenant', 'Pooled', p_rate_limit := 1000000)" | tail -1)
started=$("${psql[@]}" -d reinstall -c "SELECT pg_postmaster_start_time()")

# Four pooled backends: one session each, calling on, as a connection pool's would.
sessions=4 rounds=300
for s in $(seq 1 $sessions); do
    {
        echo "SELECT 'pid ' || pg_backend_pid();"
        for i in $(seq 1 $rounds); do
            echo "SELECT 'r ' || (list_tools('$key')->>'ok') || (call_tool('$key', 'fetch_jobs', '{\"limit\": 1}')->>'ok')
                   || (SELECT count(*) FROM validate_mcp_key('$key')) || mcp_redact_text('x');"
        done
        echo "SELECT 'pid ' || pg_backend_pid();"
    } > "$work/s$s.sql"
    psql -X -At -d reinstall -f "$work/s$s.sql" > "$work/s$s.out" 2>&1 &
done
# Meanwhile the same build goes in again and again, as `make install` puts it.
installs=0
while [ "$(jobs -rp | wc -l)" -gt 0 ] && [ "$installs" -lt 40 ]; do
    if [ "${REINSTALL_IN_PLACE:-}" = 1 ]; then
        cp "$work/same-build.so" "$libdir/mcp_auth.so"
    else
        scripts/install.sh --library "$work/same-build.so"
    fi
    installs=$((installs + 1))
    sleep 0.05
done
wait || true
# Left as it was found.
scripts/install.sh --library "$work/same-build.so"

check "the library went in again while the sessions called ($installs times)" test "$installs" -ge 5
for s in $(seq 1 $sessions); do
    check "session $s: all $rounds rounds answered ok" \
        test "$(grep -c '^r truetrue1x$' "$work/s$s.out")" = "$rounds"
    check "session $s: one backend from start to end" \
        test "$(grep '^pid ' "$work/s$s.out" | sort -u | wc -l)" = 1
done
check "no backend crashed: the server never restarted" \
    test "$("${psql[@]}" -d reinstall -c "SELECT pg_postmaster_start_time()")" = "$started"
check "and no signal in the server log" \
    bash -c "! grep -E 'terminated by signal|unrecognized function API' '$here/.clusters/$cluster/server.log'"
finish reinstall
