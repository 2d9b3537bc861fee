#!/usr/bin/env bash
# The ledger across a crash, and the library's refusal to load on demand: what a
# call acknowledged survives `pg_ctl restart -m immediate`, a key's window is loaded
# back from its durable charges, and without shared_preload_libraries the
# extension cannot be used, with an error that names the setting.
set -euo pipefail
cluster=ledger
source "$(dirname "$0")/../cluster_tap.sh" "${LEDGER_PORT:-25437}"
data="$here/.clusters/$cluster/data"
restart() { # mode
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -m "$1" -w -t 60 restart \
        -l "$here/.clusters/$cluster/server.log" >/dev/null
}
tenant=1ed9e000-0000-4000-8000-000000000001

"${psql[@]}" -d postgres -c "CREATE DATABASE ledger"
"${psql[@]}" -d ledger -c "CREATE EXTENSION mcp_auth" -c "CREATE EXTENSION mcp_mes" \
    -c "SELECT mes_seed_demo('$tenant', 5)" >/dev/null
keys=$("${psql[@]}" -d ledger -c "SET mcp_auth.bcrypt_cost = 4;
    SELECT string_agg(api_key, ' ' ORDER BY n) FROM (
        SELECT 1 AS n, api_key FROM generate_mcp_key('$tenant', 'Crash', p_rate_limit := 8)
        UNION ALL SELECT 2, api_key FROM generate_mcp_key('$tenant', 'Writer')) k" | tail -1)
read -r key writer <<<"$keys"

# Each call in its own session; the results the clients saw, then a crash at once.
ok=0
for i in $(seq 1 5); do
    r=$("${psql[@]}" -d ledger -c "SELECT call_tool('$key', 'fetch_jobs', '{\"limit\": 1}')->>'ok'")
    [ "$r" = true ] && ok=$((ok + 1))
done
restart immediate
check "5 calls acknowledged before the crash" test "$ok" = 5
check "their 5 audit rows survive the crash" test "$("${psql[@]}" -d ledger -c \
    "SELECT count(*) FROM mcp_key_usage_logs WHERE success")" = 5
check "and their 5 charges" test "$("${psql[@]}" -d ledger -c \
    "SELECT sum(cost) FROM mcp_rate_limit_charges")" = 5

# After the restart the window comes back from the charges: 3 more fit, not 8.
outcomes=$(for i in $(seq 1 4); do
    "${psql[@]}" -d ledger -c "SELECT COALESCE(call_tool('$key', 'fetch_jobs', '{}')->'error'->>'type', 'ok')"
done | sort | uniq -c | awk '{printf "%s %s;", $1, $2}')
check "the limit of 8 holds across the crash (got: $outcomes)" test "$outcomes" = "3 ok;1 rate_limit_error;"

# A rolled-back write survives a crash as an audit row with an aborted transaction.
"${psql[@]}" -d ledger -c "BEGIN" \
    -c "SELECT call_tool('$writer', 'create_job', '{\"customer\": \"Never\"}') IS NOT NULL" -c "ROLLBACK" >/dev/null
restart immediate
check "the rolled-back job's call is audited as aborted" test "$("${psql[@]}" -d ledger -c \
    "SELECT string_agg(pg_xact_status(xact_id), ',') FROM mcp_key_usage_logs WHERE tool_name = 'create_job'")" \
    = aborted
check "and its job is not there" test "$("${psql[@]}" -d ledger -c \
    "SELECT count(*) FROM jobs WHERE customer = 'Never'")" = 0

# Without shared_preload_libraries: the extension refuses, naming the setting.
preload="shared_preload_libraries = 'mcp_auth'"
runuser -u postgres -- sed -i "/^$preload/d" "$data/postgresql.conf"
restart fast
err=$("${psql[@]}" -d postgres -c "CREATE DATABASE noload" -c "\\c noload" \
    -c "CREATE EXTENSION mcp_auth" 2>&1 || true)
check "CREATE EXTENSION without the preload names the setting (got: $err)" \
    grep -q "mcp_auth must be loaded by shared_preload_libraries" <<<"$err"
err=$("${psql[@]}" -d ledger -c "SELECT call_tool('$key', 'fetch_jobs', '{}')" 2>&1 || true)
check "an installed database refuses calls the same way" \
    grep -q "shared_preload_libraries = 'mcp_auth'" <<<"$err"
runuser -u postgres -- sh -c "echo \"$preload\" >> '$data/postgresql.conf'"
restart fast
check "with the setting back, calls work again" test "$("${psql[@]}" -d ledger -c \
    "SELECT list_tools('$key')->>'ok'")" = true
finish ledger
