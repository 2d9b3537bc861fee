#!/usr/bin/env bash
# pg_dump / restore: key data survives a dump and restore (keys still validate in
# the restored database), and the dump never contains a key.
set -euo pipefail
cluster=dumptest
source "$(dirname "$0")/../cluster_tap.sh" "${DUMP_PORT:-25432}"

"${psql[@]}" -d postgres -c "CREATE DATABASE source"
"${psql[@]}" -d source -c "CREATE EXTENSION mcp_auth" -c "CREATE EXTENSION mcp_mes" \
    -c "SELECT mes_seed_demo('d0000000-0000-0000-0000-0000000000d1', 40)" >/dev/null
key=$("${psql[@]}" -d source -c "SET mcp_auth.bcrypt_cost = 4;
    SELECT api_key FROM generate_mcp_key('d0000000-0000-0000-0000-0000000000d1', 'Dumped key',
        p_allowed_tools := '[\"fetch_jobs\"]')")
"${psql[@]}" -d source -c "SELECT count(*) FROM validate_mcp_key('$key')" >/dev/null
secret="s3cr3t-value-never-stored"
"${psql[@]}" -d source -c "SELECT log_mcp_key_usage(k.tenant_id, k.id, 'fetch_jobs',
    jsonb_build_object('password', '$secret', 'echo', '$key'), false, 'bad key $key', 9)
    FROM mcp_authentication_keys k" >/dev/null
"${psql[@]}" -d source -c "SET mcp_auth.tenant_id = 'd0000000-0000-0000-0000-0000000000d1';
    SELECT log_mcp_server_event('error', 'saw $key', 'error', '{\"token\": \"$secret\"}')" >/dev/null
# Three past days of log, moved into day partitions (which are not extension members:
# pg_dump dumps them as tables, with their rows), plus today's rows in the default one.
"${psql[@]}" -d source -c "INSERT INTO mcp_key_usage_logs (tenant_id, key_id, tool_name, success, created_at)
    SELECT k.tenant_id, k.id, 'fetch_jobs', true, now() - g * interval '1 day'
      FROM mcp_authentication_keys k, generate_series(1, 3) g" -c "SELECT maintain_mcp_log_partitions()" >/dev/null
logs="SELECT (SELECT count(*) FROM mcp_key_usage_logs) || ' ' || (SELECT count(*) FROM pg_inherits
                  WHERE inhparent = 'mcp_key_usage_logs'::regclass)"
source_logs=$("${psql[@]}" -d source -c "$logs")
dump="$here/.clusters/$cluster/source.dump"
runuser -u postgres -- "$PGBIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -Fc -f "$dump" source
plain=$(runuser -u postgres -- "$PGBIN/pg_dump" -h "$PGHOST" -p "$PGPORT" source)
lookup=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)

check "the plain dump does not contain the key" bash -c '! grep -qF -- "$1" <<<"$2"' _ "$key"
check "the custom-format dump does not contain the key" bash -c '! grep -qaF -- "$1" "$2"' _ "$key" "$dump"
check "the dump does not contain redacted values" bash -c '! grep -qF -- "$1" <<<"$2"' _ "$secret" "$plain"
check "the dump carries the audit trail" grep -qF -- "bad key ${key:0:16}[redacted]" <<<"$plain"
check "the dump carries the key's lookup digest" grep -qF -- "$lookup" <<<"$plain"

"${psql[@]}" -d postgres -c "CREATE DATABASE restored"
runuser -u postgres -- "$PGBIN/pg_restore" -h "$PGHOST" -p "$PGPORT" -d restored "$dump"
check "settings and usage survive" test "$("${psql[@]}" -d restored -c \
    "SELECT allowed_tools::text || ' ' || usage_count FROM mcp_keys")" = '["fetch_jobs"] 1'
check "statistics survive" test "$("${psql[@]}" -d restored -c \
    "SELECT s.total_requests || ' ' || s.failed_requests FROM mcp_authentication_keys k, get_mcp_key_stats(k.id) s")" = '1 1'
check "the MES dashboard's counts equal the restored rows (counted again on restore)" \
    test "$("${psql[@]}" -d restored -c "SELECT count(*) FROM dashboard_counts WHERE n <> 0")" -gt 0 -a \
    "$("${psql[@]}" -d restored -c "SET mcp_auth.tenant_id = 'd0000000-0000-0000-0000-0000000000d1';
        SELECT mes_get_dashboard_stats('{}')->'jobs'
               = (SELECT jsonb_object_agg(s, (SELECT count(*) FROM jobs WHERE status = s))
                    FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s)
           AND (SELECT sum(n) FROM dashboard_counts WHERE metric LIKE 'jobs:%') = 40" | tail -1)" = t
check "every log row and day partition survives" test "$("${psql[@]}" -d restored -c "$logs")" = "$source_logs"
# The closed days' counts are not dumped: maintenance takes them again, and a purge
# of the restored days returns exactly the rows it removes.
recount=$("${psql[@]}" -d restored <<'SQL'
SELECT maintain_mcp_log_partitions() >= 0 AS maintained \gset
SELECT count(*) > 0 AS counted FROM mcp_log_partition_rows \gset
SELECT count(*) AS older FROM mcp_key_usage_logs WHERE created_at < now() - interval '36 hours' \gset
SELECT :'counted'::boolean AND :older > 0 AND purge_mcp_usage_logs('36 hours') = :older;
SQL
)
check "closed days are counted again after restore, and a purge there is exact" test "$recount" = t
check "the key validates in the restored database" \
    test "$("${psql[@]}" -d restored -c "SELECT key_name FROM validate_mcp_key('$key')")" = "Dumped key"
# The key with its last character changed (to one it is not).
changed="${key%?}$([ "${key: -1}" = x ] && echo y || echo x)"
check "a changed key is still refused after restore" bash -c \
    '! "$@" 2>/dev/null' _ "${psql[@]}" -d restored -c "SELECT * FROM validate_mcp_key('$changed')"

finish dump
