#!/usr/bin/env bash
# Upgrades from every released version: install mcp_auth (2.1.0, 2.2.0, 2.3.0) and mcp_mes
# exactly as released, fill them (keys, usage, jobs), ALTER EXTENSION ... UPDATE, then check that
# every key still validates with its tools and limit, every row is still there, and
# the upgraded schema is the one a fresh install makes (pg_dump --schema-only).
set -euo pipefail
cluster=upgrade
source "$(dirname "$0")/../cluster_tap.sh" "${UPGRADE_PORT:-25436}"
# pg_dump's per-run \restrict token aside. A plain schema dump shows an extension
# as one CREATE EXTENSION; --binary-upgrade also dumps each of its member objects
# (the lines that pin oids differ between any two databases and are left out). The
# logs' 2.1.0 history, now a partition of its own (*_untilYYYYMMDD), is data: checked
# below, left out of the comparison.
dump_schema() {
    runuser -u postgres -- "$PGBIN/pg_dump" -h "$PGHOST" -p "$PGPORT" --schema-only $2 -T '*_until*' "$1" \
        | grep -Ev '^\\(un)?restrict |binary_upgrade_|relfrozenxid|^WHERE oid = |^-- (Name|TOC entry|Dependencies)'
}
tenant=7a000000-0000-4000-8000-000000000001
current='2.4.0 2.3.0' # mcp_auth's, mcp_mes's

for from in 2.1.0 2.2.0 2.3.0; do
    db="from_${from//./_}"
    mes=$from; [ "$from" = 2.3.0 ] && mes=2.2.0 # mcp_mes had no 2.3.0
    "${psql[@]}" -d postgres -c "CREATE DATABASE $db"
    "${psql[@]}" -d "$db" -c "CREATE EXTENSION mcp_auth VERSION '$from'" \
        -c "CREATE EXTENSION mcp_mes VERSION '$mes'"
    check "$from: installed as released" test "$("${psql[@]}" -d "$db" -c \
        "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension
          WHERE extname LIKE 'mcp_%'")" = "mcp_auth $from, mcp_mes $mes"
    # Data of every kind: three keys (one narrow, one revoked), calls, logs, jobs.
    keys=$("${psql[@]}" -d "$db" -c "SET mcp_auth.bcrypt_cost = 4;
        SELECT mes_seed_demo('$tenant', 12);
        SELECT string_agg(api_key, ' ' ORDER BY n) FROM (
            SELECT 1 AS n, api_key FROM generate_mcp_key('$tenant', 'Full', p_rate_limit := 500)
            UNION ALL SELECT 2, api_key FROM generate_mcp_key('$tenant', 'Narrow',
                p_allowed_tools := '[\"fetch_*\"]', p_rate_limit := 7)) k" | tail -1)
    read -r full narrow <<<"$keys"
    "${psql[@]}" -d "$db" >/dev/null <<SQL
SELECT call_tool('$full', 'fetch_jobs', '{"limit": 3}');
SELECT call_tool('$full', 'create_job', '{"customer": "Before the upgrade"}');
SELECT call_tool('$narrow', 'fetch_parts', '{}');
SELECT call_tool('$narrow', 'create_job', '{"customer": "Refused"}');
SELECT revoke_mcp_key(key_id) FROM generate_mcp_key('$tenant', 'Revoked', p_allowed_tools := '["fetch_jobs"]');
SET mcp_auth.tenant_id = '$tenant';
SELECT log_mcp_server_event('startup', 'before the upgrade');
SELECT record_mcp_server_health('online', 3);
SQL
    counts="SELECT (SELECT count(*) FROM mcp_authentication_keys) || ' ' || (SELECT count(*) FROM mcp_key_usage_logs)
        || ' ' || (SELECT count(*) FROM activity_log) || ' ' || (SELECT count(*) FROM mcp_server_logs)
        || ' ' || (SELECT count(*) FROM jobs) || ' ' || (SELECT count(*) FROM parts)
        || ' ' || (SELECT count(*) FROM mcp_tools)"
    before=$("${psql[@]}" -d "$db" -c "$counts")

    "${psql[@]}" -d "$db" -c "ALTER EXTENSION mcp_auth UPDATE" -c "ALTER EXTENSION mcp_mes UPDATE"
    check "$from: updated to the current versions" test "$("${psql[@]}" -d "$db" -c \
        "SELECT string_agg(extversion, ' ' ORDER BY extname) FROM pg_extension WHERE extname LIKE 'mcp_%'")" \
        = "$current"
    check "$from: every row is still there" test "$("${psql[@]}" -d "$db" -c "$counts")" = "$before"
    [ "$from" = 2.1.0 ] && check "$from: each 2.1.0 log is now the partition before tomorrow, outside the extension, reached through its parent only" \
        test "$("${psql[@]}" -d "$db" -c "SELECT string_agg(i.inhparent::regclass::text, ' ' ORDER BY i.inhparent::regclass::text) FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
           WHERE c.relname = i.inhparent::regclass::text || '_until'
                             || to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD')
             AND NOT has_table_privilege('mcp_admin', c.oid, 'SELECT')
             AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')")" \
        = "activity_log mcp_key_usage_logs"
    check "$from: the full key validates with its tools and limit" test "$("${psql[@]}" -d "$db" -c \
        "SELECT key_name || ' ' || allowed_tools::text || ' ' || rate_limit FROM validate_mcp_key('$full')")" \
        = 'Full ["*"] 500'
    check "$from: the narrow key validates with its tools and limit" test "$("${psql[@]}" -d "$db" -c \
        "SELECT key_name || ' ' || allowed_tools::text || ' ' || rate_limit FROM validate_mcp_key('$narrow')")" \
        = 'Narrow ["fetch_*"] 7'
    check "$from: statistics carried over" test "$("${psql[@]}" -d "$db" -c \
        "SELECT total_requests FROM mcp_keys k, get_mcp_key_stats(k.id) WHERE k.name = 'Narrow'")" = 2
    check "$from: the narrow key still may not create jobs" test "$("${psql[@]}" -d "$db" -c \
        "SELECT call_tool('$narrow', 'create_job', '{\"customer\": \"x\"}')->'error'->>'type'")" = permission_error
    check "$from: create_job numbers on after the jobs made before" test "$("${psql[@]}" -d "$db" -c \
        "SELECT call_tool('$full', 'create_job', '{\"customer\": \"After\"}')->'result'->'job'->>'job_number'")" = J-1014
    # The upgrade records when the chains began: the calls before it are outside them.
    audit=$("${psql[@]}" -d "$db" -c "SELECT string_agg(log || ' ' || verified || ' ' || COALESCE(problem, covered), '; ' ORDER BY log)
                                       FROM verify_mcp_audit('$tenant')")
    check "$from: the audit verifies, with the rows from before the upgrade outside its chains: $audit" \
        grep -qE "^activity true .*rows from before the chain \(2.4.0\) are outside it; usage true .*rows from before the chain \(2.4.0\) are outside it$" <<<"$audit"

    check "$from: the dashboard's counts start from the rows already there" test "$("${psql[@]}" -d "$db" -c \
        "SELECT call_tool('$full', 'get_dashboard_stats', '{}')->'result'->'jobs'
                = (SELECT jsonb_object_agg(s, (SELECT count(*) FROM jobs WHERE status = s))
                     FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s)")" = t

    "${psql[@]}" -d postgres -c "CREATE DATABASE fresh_$db"
    "${psql[@]}" -d "fresh_$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION mcp_mes CASCADE"
    # The day partitions ahead, in both (the notifier worker makes them after calls,
    # at a time of its own): they are the same tables in both.
    for d in "$db" "fresh_$db"; do
        "${psql[@]}" -d "$d" -c "SELECT maintain_mcp_log_partitions()" >/dev/null
    done
    # Data rows (config dumps) aside, the schema must be the same.
    for mode in "" --binary-upgrade; do
        diff_out=$(diff <(dump_schema "$db" "$mode") <(dump_schema "fresh_$db" "$mode") || true)
        check "$from: pg_dump --schema-only $mode of the upgraded database equals a fresh install's" \
            test -z "$diff_out"
        [ -z "$diff_out" ] || printf '%s\n' "$diff_out" | head -80
    done
done

finish upgrade
