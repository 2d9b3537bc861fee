#!/usr/bin/env bash
# The tamper-evident audit (issue 21): each tenant's usage log, and the activity rows
# the ledger writes, are hash chains that verify_mcp_audit (SQL) and `mcp-auth audit
# verify` (offline) check. A superuser
# edits, deletes, inserts, swaps, truncates and drops partitions here, and each is
# found; a forgery that rewrites the chain and the database's own records is found
# by a signed checkpoint kept outside. A purge keeps the chain verifiable, and the
# offline verifier agrees with the SQL one on a restored dump.
set -euo pipefail
cluster=chain
source "$(dirname "$0")/../cluster_tap.sh" "${CHAIN_PORT:-25443}"
cargo build -q -p mcp-auth
mcp_auth="$here/target/debug/mcp-auth"
work="$here/.clusters/$cluster"
a=c4a10000-0000-4000-8000-00000000000a
b=c4a10000-0000-4000-8000-00000000000b
db() { "${psql[@]}" -d chain "$@"; }
offline() { # database, args...: the offline verifier's exit status and output
    local database=$1; shift
    DATABASE_URL="host=$PGHOST port=$PGPORT user=postgres dbname=$database" "$mcp_auth" audit verify "$@" 2>&1
}
# The SQL verdict on tenant $1's chain of log $3 (usage by default) inside a
# transaction that first runs $2 (rolled back).
tampered() { # tenant, tampering SQL[, log]
    db -c "BEGIN" -c "$2" -c "SELECT CASE WHEN verified THEN 't' ELSE 'f' END || ' ' || COALESCE(broken_seq::text, '-') || ' ' || COALESCE(problem, '')
                             FROM verify_mcp_audit('$1') WHERE log = '${3:-usage}'" -c "ROLLBACK" | grep -E '^(t|f) '
}
# Whether both of tenant $1's chains verify, in database $2 (chain by default).
verified() { "${psql[@]}" -d "${2:-chain}" -c "SELECT bool_and(verified) FROM verify_mcp_audit('$1')"; }
# What an attacker who read docs/audit-chain.md runs to re-link tenant $1's rows from
# seq $2 on, and to move its head: the chain is whole again, as far as the database
# can tell.
relink() { # tenant, from seq
    cat <<SQL
DO \$relink\$
DECLARE
    r record;
    prev bytea := COALESCE((SELECT hash FROM mcp_key_usage_logs WHERE tenant_id = '$1' AND seq = $2 - 1),
                           decode(repeat('00', 32), 'hex'));
BEGIN
    FOR r IN SELECT l.seq, ARRAY[textin(uuid_out(tenant_id)), textin(int8out(seq)), textin(uuid_out(id)),
                                 textin(uuid_out(key_id)), tool_name, textin(jsonb_out(tool_arguments)),
                                 textin(boolout(success)), error_message, textin(int4out(response_time_ms)),
                                 textin(inet_out(ip_address)), user_agent,
                                 textin(int8out(int8(numeric_mul(pg_catalog.extract('epoch', created_at), '1000000')))),
                                 textin(xid8out(xact_id))] AS f
               FROM mcp_key_usage_logs l WHERE l.tenant_id = '$1' AND l.seq >= $2 ORDER BY l.seq LOOP
        UPDATE mcp_key_usage_logs SET prev_hash = prev, hash = substr(mcp_audit_chain_step(NULL, prev, r.f), 33)
         WHERE tenant_id = '$1' AND seq = r.seq RETURNING hash INTO prev;
    END LOOP;
    UPDATE mcp_audit_heads h SET seq = m.seq, hash = prev, at = m.at
      FROM (SELECT max(seq) AS seq, max(created_at) AS at FROM mcp_key_usage_logs WHERE tenant_id = '$1') m
     WHERE h.tenant_id = '$1' AND h.log = 'usage';
END
\$relink\$;
SQL
}

"${psql[@]}" -d postgres -c "CREATE DATABASE chain"
db -c "CREATE EXTENSION mcp_auth" -c "CREATE EXTENSION mcp_mes" \
    -c "SELECT mes_seed_demo('$a', 5), mes_seed_demo('$b', 5)" >/dev/null
keys=$(db -c "SET mcp_auth.bcrypt_cost = 4;
    SELECT string_agg(api_key, ' ' ORDER BY t) FROM (
        SELECT 1 AS t, api_key FROM generate_mcp_key('$a', 'A', p_rate_limit := 10000)
        UNION ALL SELECT 2, api_key FROM generate_mcp_key('$b', 'B', p_rate_limit := 10000)) k" | tail -1)
read -r key_a key_b <<<"$keys"
calls() { # key, n: n calls through call_tool, some refused (an unknown tool), each its own statement
    for i in $(seq 1 "$2"); do
        local tool=fetch_jobs; [ $((i % 7)) -eq 0 ] && tool=no_such_tool
        echo "SELECT call_tool('$1', '$tool', '{\"limit\": 1, \"note\": \"call $i\"}', '{\"ip\": \"10.0.0.$i\", \"user_agent\": \"chain-test\"}') IS NOT NULL;"
    done | db >/dev/null
}
calls "$key_a" 40
calls "$key_b" 12
# A row logged by an application too, with NULLs and odd text.
db -c "SELECT log_mcp_key_usage('$b', id, 'fetch_jobs', '{\"é\": [1, 2.50, null], \"a\": {\"b\": \"\\\\u0000x\"}}', false,
       'line1
line2', NULL, '::1', NULL) FROM mcp_authentication_keys WHERE tenant_id = '$b'" >/dev/null

check "tenant A's chain has seq 1..40 with no gap (40 calls, refusals among them)" \
    test "$(db -c "SELECT count(*) || ' ' || min(seq) || ' ' || max(seq) || ' ' || count(DISTINCT seq)
                   FROM mcp_key_usage_logs WHERE tenant_id = '$a'")" = "40 1 40 40"
check "every row links to the one before it" test "$(db -c "SELECT count(*) FROM mcp_key_usage_logs l
    JOIN mcp_key_usage_logs p ON p.tenant_id = l.tenant_id AND p.seq = l.seq - 1 WHERE l.prev_hash <> p.hash")" = 0
check "verify_mcp_audit: both tenants' usage and activity chains verified, whole" test "$(db -c \
    "SELECT string_agg(log || ' ' || verified || ' ' || rows_checked || ' ' || covered, '; ' ORDER BY tenant_id, log DESC)
       FROM verify_mcp_audit()")" \
    = "usage true 40 rows 1 to 40, from the start of the chain; activity true 40 rows 1 to 40, from the start of the chain; usage true 13 rows 1 to 13, from the start of the chain; activity true 13 rows 1 to 13, from the start of the chain"
out=$(offline chain) && rc=0 || rc=$?
check "the offline verifier agrees (rc $rc): $out" \
    bash -c '[ "$1" = 0 ] && [ "$(grep -c " \(usage\|activity\): verified, rows 1 to" <<<"$2")" = 4 ]' _ "$rc" "$out"
db -c "SELECT mcp_ledger_sync()" >/dev/null
check "after a sync, the heads are the last rows" test "$(db -c "SELECT count(*) FILTER (WHERE h.seq = l.seq AND h.hash = l.hash)
    FROM mcp_audit_heads h
    JOIN LATERAL (SELECT seq, hash FROM mcp_key_usage_logs l WHERE h.log = 'usage' AND l.tenant_id = h.tenant_id AND l.seq = h.seq
                  UNION ALL SELECT seq, hash FROM activity_log l WHERE h.log = 'activity' AND l.tenant_id = h.tenant_id AND l.seq = h.seq) l
      ON true WHERE h.tenant_id = '$a'")" = 2
check "each activity row the ledger wrote is in the chain, at its usage row's place and time" test "$(db -c \
    "SELECT count(*) FROM activity_log a JOIN mcp_key_usage_logs u ON u.id = (a.metadata->>'usage_log_id')::uuid
      WHERE a.tenant_id = '$a' AND a.seq = u.seq AND a.created_at = u.created_at")" = 40

# A signed checkpoint, kept outside the database.
"$mcp_auth" audit keygen --out "$work/signing.key" 2>/dev/null
check "the signing key is readable by its owner only" test "$(stat -c %a "$work/signing.key")" = 600
DATABASE_URL="host=$PGHOST port=$PGPORT user=postgres dbname=chain" \
    "$mcp_auth" audit checkpoint --sign "$work/signing.key" --out "$work/checkpoint.json"
check "the checkpoint names all four heads" test "$(grep -c '"seq"' "$work/checkpoint.json")" = 4
out=$(offline chain --checkpoint "$work/checkpoint.json" --public-key "$work/signing.key.pub") && rc=0 || rc=$?
check "the signed checkpoint verifies against the chains (rc $rc)" \
    bash -c '[ "$1" = 0 ] && grep -q "signed checkpoint of .* verifies" <<<"$2"' _ "$rc" "$out"
sed 's/"seq": 40/"seq": 39/' "$work/checkpoint.json" >"$work/altered.json"
out=$(offline chain --checkpoint "$work/altered.json" --public-key "$work/signing.key.pub") && rc=0 || rc=$?
check "an altered checkpoint is refused: its signature does not verify (rc $rc)" \
    bash -c '[ "$1" = 1 ] && grep -q "signature does not verify" <<<"$2"' _ "$rc" "$out"
"$mcp_auth" audit keygen --out "$work/other.key" 2>/dev/null
out=$(offline chain --checkpoint "$work/checkpoint.json" --public-key "$work/other.key.pub") && rc=0 || rc=$?
check "a checkpoint checked with another public key is refused (rc $rc)" \
    bash -c '[ "$1" = 1 ] && grep -q "signature does not verify" <<<"$2"' _ "$rc" "$out"
# When the chains began decides which rows outside them pass for older ones: the
# checkpoint signs it (none here: installed with the chains).
check "the checkpoint signs that the chains began with the install" grep -q '"began": null' "$work/checkpoint.json"
db -c "INSERT INTO mcp_audit_upgraded (began) VALUES ('2999-01-01')" >/dev/null
out=$(offline chain --checkpoint "$work/checkpoint.json" --public-key "$work/signing.key.pub") && rc=0 || rc=$?
check "a start of the chains written later is refused against it (rc $rc): $out" \
    bash -c '[ "$1" = 1 ] && grep -q "mcp_audit_upgraded was changed" <<<"$2"' _ "$rc" "$out"
db -c "DELETE FROM mcp_audit_upgraded" >/dev/null

# Tampering as a superuser, each in a transaction of its own (rolled back).
v=$(tampered "$a" "UPDATE mcp_key_usage_logs SET response_time_ms = response_time_ms + 1 WHERE tenant_id = '$a' AND seq = 20")
check "an edited field of a middle row is found at that row: $v" grep -q "^f 20 row 20 was changed" <<<"$v"
v=$(tampered "$a" "UPDATE mcp_key_usage_logs SET tool_arguments = tool_arguments || '{\"x\": 1}' WHERE tenant_id = '$a' AND seq = 8")
check "edited arguments are found: $v" grep -q "^f 8 row 8 was changed" <<<"$v"
v=$(tampered "$a" "DELETE FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 20")
check "a deleted row is found as a gap: $v" grep -q "^f 21 row 20 is missing" <<<"$v"
v=$(tampered "$a" "INSERT INTO mcp_key_usage_logs (tenant_id, key_id, tool_name, success, seq, prev_hash, hash, created_at)
    SELECT tenant_id, key_id, 'create_job', true, seq, prev_hash, hash, created_at
      FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 25")
check "an inserted row with a copied seq and hash is found: $v" grep -qE "^f 2[56] " <<<"$v"
v=$(tampered "$a" "UPDATE mcp_key_usage_logs SET seq = CASE seq WHEN 30 THEN 31 ELSE 30 END
    WHERE tenant_id = '$a' AND seq IN (30, 31)")
check "two swapped rows are found: $v" grep -q "^f 31 row 30 is missing (deleted, or rows moved)" <<<"$v"
v=$(tampered "$a" "UPDATE mcp_key_usage_logs SET prev_hash = p.prev_hash, hash = p.hash, seq = p.seq
    FROM (SELECT seq, prev_hash, hash FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq IN (11, 12)) p
    WHERE tenant_id = '$a' AND mcp_key_usage_logs.seq IN (11, 12) AND p.seq <> mcp_key_usage_logs.seq")
check "two rows swapped with their links are found: $v" grep -q "^f 12 row 11 is missing" <<<"$v"
v=$(tampered "$a" "DELETE FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq > 35")
check "a truncated tail is found against the head: $v" grep -q "^f 36 the rows end at 35 but the chain's head is at 40" <<<"$v"
v=$(tampered "$a" "INSERT INTO mcp_key_usage_logs (tenant_id, key_id, tool_name, success, created_at)
    SELECT tenant_id, key_id, 'delete_everything', true, created_at FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 3")
check "an inserted row without a place in the chain, dated after the chain began, is found: $v" \
    grep -qE "^f [0-9]+ a row outside the chain is dated after the chain began" <<<"$v"
check "in a database upgraded to the chains, one dated before they began is reported as outside them" \
    test "$(db -c "BEGIN" -c "INSERT INTO mcp_audit_upgraded (began) VALUES (now() - interval '1 hour')" \
        -c "INSERT INTO mcp_key_usage_logs (tenant_id, tool_name, success, created_at)
            VALUES ('$a', 'old', true, now() - interval '1 day')" \
        -c "SELECT verified || ' ' || covered FROM verify_mcp_audit('$a') WHERE log = 'usage'" -c "ROLLBACK" | grep rows)" \
        = "true rows 1 to 40, from the start of the chain; 1 rows from before the chain (2.4.0) are outside it"
v=$(tampered "$a" "INSERT INTO mcp_key_usage_logs (tenant_id, tool_name, success, created_at)
    VALUES ('$a', 'old', true, now() - interval '1 day')")
check "in one installed with them, the same row is found as inserted (no row can be older): $v" \
    grep -q "^f 0 a row outside the chain where every row is chained" <<<"$v"
check "tenant B's chains are untouched by all of this" test "$(verified "$b")" = t

# The activity rows the ledger wrote, tampered with the same way.
v=$(tampered "$a" "UPDATE activity_log SET action = 'mcp_execute', description = 'Tool \"fetch_jobs\" executed successfully'
    WHERE tenant_id = '$a' AND seq = 7" activity)
check "an activity row whose failure was turned into a success is found at that row: $v" grep -q "^f 7 row 7 was changed" <<<"$v"
v=$(tampered "$a" "DELETE FROM activity_log WHERE tenant_id = '$a' AND seq = 12" activity)
check "a deleted activity row is found as a gap: $v" grep -q "^f 13 row 12 is missing" <<<"$v"
v=$(tampered "$a" "UPDATE activity_log SET seq = CASE seq WHEN 30 THEN 31 ELSE 30 END WHERE tenant_id = '$a' AND seq IN (30, 31)" activity)
check "two swapped activity rows are found: $v" grep -q "^f 31 row 30 is missing" <<<"$v"
v=$(tampered "$a" "DELETE FROM activity_log WHERE tenant_id = '$a' AND seq > 38" activity)
check "a truncated activity tail is found against its head: $v" grep -q "^f 39 the rows end at 38 but the chain's head is at 40" <<<"$v"
v=$(tampered "$a" "INSERT INTO activity_log (tenant_id, user_name, action, entity_type, entity_id, entity_name, description)
    VALUES ('$a', 'MCP Server', 'mcp_execute', 'mcp_tool', 'delete_all_jobs', 'delete_all_jobs',
            'Tool \"delete_all_jobs\" executed successfully')" activity)
check "a forged MCP activity row outside the chain is found: $v" \
    grep -q "^f 40 a row outside the chain is dated after the chain began" <<<"$v"
v=$(tampered "$a" "INSERT INTO activity_log (tenant_id, user_name, action, entity_type) VALUES ('$a', 'alice', 'user_login', 'session')" activity)
check "the application's own activity rows are not part of the chain: $v" grep -q "^t - $" <<<"$v"

# What an attacker who knows the verifiers tries (issue 21's attacker, found in review).
v=$(tampered "$a" "UPDATE mcp_key_usage_logs SET tool_arguments = '{\"limit\": 999}' WHERE tenant_id = '$a' AND seq = 2;
    CREATE FUNCTION public.lie(j jsonb) RETURNS text LANGUAGE sql IMMUTABLE
        AS \$\$ SELECT CASE WHEN j = '{\"limit\": 999}' THEN '{\"limit\": 1}' ELSE textin(jsonb_out(j)) END \$\$;
    CREATE CAST (jsonb AS text) WITH FUNCTION public.lie(jsonb)")
check "a cast that prints an edited value as the original does not hide the edit: $v" grep -q "^f 2 row 2 was changed" <<<"$v"
v=$(db -c "BEGIN" -c "CREATE OR REPLACE FUNCTION pg_catalog.boolout(boolean) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'int4out'" \
    -c "SELECT * FROM verify_mcp_audit('$a')" -c "ROLLBACK" 2>&1 || true)
check "a replaced built-in output function stops verification: $v" grep -q "what the chain is read through is not PostgreSQL's own (pg_catalog.boolout(boolean))" <<<"$v"
# Overloads a superuser adds to pg_catalog, which win over a built-in for a call
# whose types are not an exact match: one that moved rows' times back unseen (an
# untyped literal once chose numeric_mul(numeric, text)), and an operator that
# blinded the built-ins check (oid >= integer).
v=$(db -c "BEGIN" -c "CREATE FUNCTION pg_catalog.numeric_mul(numeric, text) RETURNS numeric LANGUAGE sql IMMUTABLE
        AS \$\$ SELECT pg_catalog.numeric_mul(\$1, \$2::numeric) \$\$" \
    -c "SELECT * FROM verify_mcp_audit('$a')" -c "ROLLBACK" 2>&1 || true)
check "a function added to pg_catalog stops verification: $v" grep -q "function numeric_mul(numeric,text) in pg_catalog" <<<"$v"
v=$(db -c "BEGIN" -c "CREATE FUNCTION public.always(oid, integer) RETURNS boolean LANGUAGE sql AS 'SELECT false'" \
    -c "CREATE OPERATOR pg_catalog.>= (LEFTARG = oid, RIGHTARG = integer, FUNCTION = public.always)" \
    -c "SELECT * FROM verify_mcp_audit('$a')" -c "ROLLBACK" 2>&1 || true)
check "so does an operator added there: $v" grep -q "operator >=(oid,integer) in pg_catalog" <<<"$v"
out=$(db -c "CREATE FUNCTION pg_catalog.quote_ident(name) RETURNS text LANGUAGE sql STABLE
        AS \$\$ SELECT 'shadow'::text \$\$" >/dev/null; offline chain; rc=$?; db -c "DROP FUNCTION pg_catalog.quote_ident(name)" >/dev/null; exit $rc) && rc=0 || rc=$?
check "and offline, an overload that would name another schema (rc $rc): $out" \
    bash -c '[ "$1" = 1 ] && grep -q "function quote_ident(name) in pg_catalog" <<<"$2"' _ "$rc" "$out"
# The offline verifier reads binary: a type's send function set to one of a
# superuser's would hand it the original of an edited field.
db -c "CREATE FUNCTION public.lying_textsend(t text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT
        AS \$\$ SELECT pg_catalog.textsend(CASE WHEN t = 'delete_everything' THEN 'fetch_jobs' ELSE t END) \$\$" >/dev/null
out=$(db -c "UPDATE mcp_key_usage_logs SET tool_name = 'delete_everything' WHERE tenant_id = '$a' AND seq = 2" \
         -c "ALTER TYPE pg_catalog.text SET (SEND = public.lying_textsend)" >/dev/null
      offline chain --checkpoint "$work/checkpoint.json" --public-key "$work/signing.key.pub"; rc=$?
      db -c "ALTER TYPE pg_catalog.text SET (SEND = pg_catalog.textsend)" \
         -c "UPDATE mcp_key_usage_logs SET tool_name = 'fetch_jobs' WHERE tenant_id = '$a' AND seq = 2" >/dev/null; exit $rc) && rc=0 || rc=$?
check "a type's send function of someone's stops the offline verifier (rc $rc): $out" \
    bash -c '[ "$1" = 1 ] && grep -q "the input or output of type text" <<<"$2"' _ "$rc" "$out"
v=$(db -c "BEGIN" -c "CREATE OR REPLACE FUNCTION pg_catalog.oidne(oid, oid) RETURNS boolean LANGUAGE sql IMMUTABLE
        AS 'SELECT false'" -c "SELECT * FROM verify_mcp_audit('$a')" -c "ROLLBACK" 2>&1 || true)
check "a replaced comparison the check itself uses does not blind it: $v" grep -q "pg_catalog.oidne(oid, oid)" <<<"$v"
db -c "DROP FUNCTION public.lying_textsend(text)" >/dev/null
v=$(tampered "$a" "UPDATE mcp_key_usage_logs SET tool_name = 'delete_all_jobs' WHERE tenant_id = '$a' AND seq IN (1, 2);
    INSERT INTO mcp_audit_anchors (tenant_id, log, seq, hash, at) SELECT tenant_id, 'usage', seq, hash, created_at
      FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 3")
check "a forged anchor does not hide the edited rows still below it: $v" grep -q "^f 1 row 1 is at or before the purge's anchor (3)" <<<"$v"
# Row 3 edited and re-hashed, an anchor forged at row 4, and row 4 deleted: row 3
# now leads nowhere a walk checks, but rows are left at or before the anchor.
v=$(tampered "$a" "UPDATE mcp_key_usage_logs SET tool_name = 'delete_all_jobs' WHERE tenant_id = '$a' AND seq = 3;
    UPDATE mcp_key_usage_logs SET hash = substr(mcp_audit_chain_step(NULL, prev_hash, ARRAY[textin(uuid_out(tenant_id)),
        textin(int8out(seq)), textin(uuid_out(id)), textin(uuid_out(key_id)), tool_name, textin(jsonb_out(tool_arguments)),
        textin(boolout(success)), error_message, textin(int4out(response_time_ms)), textin(inet_out(ip_address)), user_agent,
        textin(int8out(int8(numeric_mul(pg_catalog.extract('epoch', created_at), '1000000')))), textin(xid8out(xact_id))]), 33)
     WHERE tenant_id = '$a' AND seq = 3;
    INSERT INTO mcp_audit_anchors (tenant_id, log, seq, hash, at) SELECT tenant_id, 'usage', seq, hash, created_at
      FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 4;
    DELETE FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 4")
check "an edited row re-hashed behind a forged anchor (the anchor's row deleted) is found: $v" \
    grep -q "^f 1 row 1 is at or before the purge's anchor (4)" <<<"$v"
v=$(tampered "$a" "INSERT INTO mcp_audit_anchors (tenant_id, log, seq, hash, at) SELECT tenant_id, 'usage', seq, hash, created_at
      FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 40")
check "an anchor whose rows are all still there is found (a purge removes what it anchors): $v" \
    grep -q "^f 1 row 1 is at or before the purge's anchor (40)" <<<"$v"
v=$(tampered "$a" "INSERT INTO mcp_key_usage_logs (tenant_id, tool_name, success, created_at) VALUES ('$a', 'forged', true, 'infinity')")
check "a row dated infinity is found as inserted: $v" grep -q "^f 40 a row outside the chain is dated after the chain began" <<<"$v"
v=$(tampered "$a" "UPDATE mcp_key_usage_logs SET error_message = 'edited' WHERE tenant_id = '$a' AND seq = 5;
    DELETE FROM mcp_audit_heads WHERE tenant_id = '$a'")
check "a tenant whose heads were deleted is still verified (and both chains found): $v" \
    test "$(db -c "BEGIN" -c "DELETE FROM mcp_audit_heads WHERE tenant_id = '$a'" \
        -c "SELECT count(*) FROM verify_mcp_audit() WHERE tenant_id = '$a' AND NOT verified" -c "ROLLBACK")" = 2
check "a tenant whose rows, heads and anchors were all deleted is still verified, from its checkpoints" \
    test "$(db -c "BEGIN" -c "DELETE FROM mcp_key_usage_logs WHERE tenant_id = '$b'" -c "DELETE FROM activity_log WHERE tenant_id = '$b'" \
        -c "DELETE FROM mcp_audit_heads WHERE tenant_id = '$b'" -c "DELETE FROM mcp_audit_anchors WHERE tenant_id = '$b'" \
        -c "SELECT count(*) FROM verify_mcp_audit() WHERE tenant_id = '$b' AND NOT verified" -c "ROLLBACK")" = 2
v=$(db -c "BEGIN" -c "CREATE DOMAIN public.lie AS text" \
    -c "ALTER TABLE activity_log ALTER COLUMN entity_id TYPE public.lie" \
    -c "SELECT * FROM verify_mcp_audit('$a')" -c "ROLLBACK" 2>&1 || true)
check "a chained column whose type was changed stops verification: $v" \
    grep -q "not PostgreSQL's own (column .*activity_log.entity_id of type .*lie)" <<<"$v"
v=$(db -c "BEGIN" -c "ALTER TABLE activity_log RENAME TO activity_log_real" \
    -c "CREATE VIEW activity_log AS SELECT * FROM activity_log_real" \
    -c "SELECT * FROM verify_mcp_audit('$a')" -c "ROLLBACK" 2>&1 || true)
check "a view in the log's place (one that could show the verifier other rows) stops verification: $v" \
    grep -q "not PostgreSQL's own (.*activity_log is not mcp_auth's partitioned table" <<<"$v"
chmod 644 "$work/signing.key"
out=$(DATABASE_URL="host=$PGHOST port=$PGPORT user=postgres dbname=chain" \
    "$mcp_auth" audit checkpoint --sign "$work/signing.key" 2>&1) && rc=0 || rc=$?
check "a signing key others may read is refused (rc $rc): $out" \
    bash -c '[ "$1" = 1 ] && grep -q "others may read it (mode 644)" <<<"$2"' _ "$rc" "$out"
chmod 600 "$work/signing.key"
out=$("$mcp_auth" audit keygen --out "$work/signing.key" 2>&1) && rc=0 || rc=$?
check "keygen never overwrites a key (rc $rc)" test "$rc" = 1
db -c "UPDATE mcp_key_usage_logs SET success = NOT success WHERE tenant_id = '$b' AND seq = 2" >/dev/null
out=$(DATABASE_URL="host=$PGHOST port=$PGPORT user=postgres dbname=chain" \
    "$mcp_auth" audit checkpoint --sign "$work/signing.key" --out "$work/partial.json" 2>&1) && rc=0 || rc=$?
check "a broken chain is left out of a signed checkpoint, and named (rc $rc): $out" \
    bash -c '[ "$1" = 1 ] && grep -q "checkpoint written without 1 broken chain(s).*tenant $2.s usage chain is broken at 2" <<<"$3"' _ "$rc" "$b" "$out"
check "(the others are in it: 3 heads of 4)" test "$(grep -c '"seq"' "$work/partial.json")" = 3
db -c "UPDATE mcp_key_usage_logs SET success = NOT success WHERE tenant_id = '$b' AND seq = 2" >/dev/null
check "(tenant B restored)" test "$(verified "$b")" = t

# Forgeries that rewrite the database's own records too: the head, the checkpoints
# kept inside. The SQL verifier cannot tell; the signed checkpoint can.
forge_middle="BEGIN;
UPDATE mcp_key_usage_logs SET seq = seq + 1 WHERE tenant_id = '$a' AND seq >= 10;
INSERT INTO mcp_key_usage_logs (id, tenant_id, key_id, tool_name, tool_arguments, success, created_at, seq)
SELECT gen_random_uuid(), tenant_id, key_id, 'create_job', '{\"customer\": \"Forged\"}', true, created_at, 10
  FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 9;
$(relink "$a" 10)
DELETE FROM mcp_audit_checkpoints;
COMMIT;"
# A copy to forge in (the database's workers leave it first).
for attempt in 1 2 3 4 5; do
    "${psql[@]}" -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'chain'" \
        -c "CREATE DATABASE forged TEMPLATE chain" >/dev/null 2>&1 && break
    sleep 1
done
"${psql[@]}" -d forged <<<"$forge_middle" >/dev/null
check "a forged row inserted in the middle, the chain re-linked and the head moved: SQL says verified" \
    test "$(verified "$a" forged)" = t
out=$(offline forged --checkpoint "$work/checkpoint.json" --public-key "$work/signing.key.pub") && rc=0 || rc=$?
check "a checkpoint of database chain is refused for database forged (rc $rc): $out" \
    bash -c '[ "$1" = 1 ] && grep -q "signed for database \"chain\", not \"forged\"" <<<"$2"' _ "$rc" "$out"
out=$(offline forged --checkpoint "$work/checkpoint.json" --public-key "$work/signing.key.pub" --other-database) && rc=0 || rc=$?
check "but not against the signed checkpoint (rc $rc): $out" \
    bash -c '[ "$1" = 1 ] && grep -q "BROKEN at 40: row 40.s hash is not the one the signed checkpoint records" <<<"$2"' _ "$rc" "$out"
"${psql[@]}" -d forged <<SQL >/dev/null
CREATE FUNCTION public.redirect(t text) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS \$\$ SELECT CASE WHEN t = '$a' THEN '$b'::uuid ELSE pg_catalog.uuid_in(pg_catalog.textout(t)) END \$\$;
CREATE CAST (text AS uuid) WITH FUNCTION public.redirect(text);
SQL
out=$(offline forged --tenant "$a" --checkpoint "$work/checkpoint.json" --public-key "$work/signing.key.pub" --other-database) && rc=0 || rc=$?
check "a cast that would point tenant A's walk at tenant B's rows changes nothing (rc $rc)" \
    bash -c '[ "$1" = 1 ] && grep -q "BROKEN at 40" <<<"$2"' _ "$rc" "$out"
"${psql[@]}" -d forged <<SQL >/dev/null
BEGIN;
DELETE FROM mcp_key_usage_logs WHERE tenant_id = '$b' AND seq > 10;
UPDATE mcp_audit_heads h SET seq = 10, hash = l.hash FROM mcp_key_usage_logs l
 WHERE l.tenant_id = '$b' AND l.seq = 10 AND h.tenant_id = '$b' AND h.log = 'usage';
COMMIT;
SQL
check "a tail cut with the head moved back: SQL says verified" test "$(verified "$b" forged)" = t
out=$(offline forged --tenant "$b" --checkpoint "$work/checkpoint.json" --public-key "$work/signing.key.pub" --other-database) && rc=0 || rc=$?
check "but the signed checkpoint shows the truncation (rc $rc): $out" \
    bash -c '[ "$1" = 1 ] && grep -q "the rows end at 10 but the signed checkpoint is at 13: rows at the end are missing" <<<"$2"' _ "$rc" "$out"

# A partition dropped outside the purge: the day's rows (still in the default
# partition: maintenance makes a day's partition once the day is over) moved into
# three partitions by time, as a superuser could, and the middle one dropped.
calls "$key_a" 5
db <<SQL >/dev/null
BEGIN;
SELECT (SELECT created_at FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 1) AS cut0,
       (SELECT created_at FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 15) AS cut1,
       (SELECT created_at FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 30) AS cut2,
       now() AS cut3 \gset
CREATE TABLE mcp_key_usage_logs_early (LIKE mcp_key_usage_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE TABLE mcp_key_usage_logs_mid (LIKE mcp_key_usage_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE TABLE mcp_key_usage_logs_late (LIKE mcp_key_usage_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
WITH m AS (DELETE FROM mcp_key_usage_logs_default WHERE created_at >= :'cut0' AND created_at < :'cut1' RETURNING *)
INSERT INTO mcp_key_usage_logs_early SELECT * FROM m;
WITH m AS (DELETE FROM mcp_key_usage_logs_default WHERE created_at >= :'cut1' AND created_at < :'cut2' RETURNING *)
INSERT INTO mcp_key_usage_logs_mid SELECT * FROM m;
WITH m AS (DELETE FROM mcp_key_usage_logs_default WHERE created_at >= :'cut2' AND created_at < :'cut3' RETURNING *)
INSERT INTO mcp_key_usage_logs_late SELECT * FROM m;
ALTER TABLE mcp_key_usage_logs ATTACH PARTITION mcp_key_usage_logs_early FOR VALUES FROM (:'cut0') TO (:'cut1');
ALTER TABLE mcp_key_usage_logs ATTACH PARTITION mcp_key_usage_logs_mid FOR VALUES FROM (:'cut1') TO (:'cut2');
ALTER TABLE mcp_key_usage_logs ATTACH PARTITION mcp_key_usage_logs_late FOR VALUES FROM (:'cut2') TO (:'cut3');
COMMIT;
SQL
check "the day's rows are in three partitions" test "$(db -c "SELECT count(DISTINCT tableoid) FROM mcp_key_usage_logs
    WHERE tenant_id = '$a' AND tableoid::regclass::text ~ '_(early|mid|late)$'")" = 3
check "the chain still verifies across three partitions" test "$(verified "$a")" = t
v=$(tampered "$a" "DROP TABLE mcp_key_usage_logs_mid")
check "a dropped partition is found as the gap it leaves: $v" grep -q "^f 30 rows 15 to 29 are missing" <<<"$v"

# Retention: tenant A's first 20 rows moved three days back (and re-linked, as the
# fixture of an older history), then purged by the public function.
db <<SQL >/dev/null
BEGIN;
UPDATE mcp_key_usage_logs SET created_at = created_at - interval '3 days' WHERE tenant_id = '$a' AND seq <= 20;
$(relink "$a" 1)
UPDATE mcp_audit_heads SET at = (SELECT max(created_at) FROM mcp_key_usage_logs WHERE tenant_id = '$a')
 WHERE tenant_id = '$a' AND log = 'usage';
DELETE FROM mcp_audit_checkpoints;
COMMIT;
SELECT maintain_mcp_log_partitions();
SQL
check "the older history verifies" test "$(verified "$a")" = t
purged=$(db -c "SELECT purge_mcp_usage_logs('2 days')")
check "a purge removes the 20 older rows ($purged)" test "$purged" = 20
check "and records where tenant A's usage chain goes on" test "$(db -c "SELECT log || ' ' || seq FROM mcp_audit_anchors WHERE tenant_id = '$a'")" = "usage 20"
calls "$key_a" 3
check "after the purge the chain verifies from the anchor" test "$(db -c \
    "SELECT verified || ' ' || covered FROM verify_mcp_audit('$a') WHERE log = 'usage'")" = "true rows 21 to 48, after a purge's anchor at 20"
v=$(tampered "$a" "DELETE FROM mcp_key_usage_logs WHERE tenant_id = '$a' AND seq = 21")
check "the first row after the anchor is still guarded: $v" grep -q "^f 22 row 21 is missing" <<<"$v"
v=$(tampered "$a" "INSERT INTO mcp_key_usage_logs (tenant_id, tool_name, success, created_at)
    SELECT '$a', 'delete_all_jobs', true, at + interval '1 second' FROM mcp_audit_anchors WHERE tenant_id = '$a'")
check "after the purge, a row outside the chain dated after the anchor is found: $v" \
    grep -q "^f 20 a row outside the chain is dated after the chain began (after row 20)" <<<"$v"

# Retention of activity_log: tenant A's activity rows before its 21st purged by
# tenant (so the rows are deleted, not the day detached).
purged=$(db -c "SET mcp_auth.tenant_id = '$a'" \
    -c "SELECT purge_activity_log(now() - (SELECT created_at FROM activity_log WHERE tenant_id = '$a' AND seq = 21))" | tail -1)
check "an activity purge removes tenant A's first 20 activity rows ($purged)" test "$purged" = 20
check "and records where tenant A's activity chain goes on" test "$(db -c \
    "SELECT string_agg(log || ' ' || seq, ', ' ORDER BY log) FROM mcp_audit_anchors WHERE tenant_id = '$a'")" = "activity 20, usage 20"
check "after it, both chains verify from their anchors" test "$(db -c \
    "SELECT string_agg(log || ' ' || verified || ' ' || covered, '; ' ORDER BY log) FROM verify_mcp_audit('$a')")" \
    = "activity true rows 21 to 48, after a purge's anchor at 20; usage true rows 21 to 48, after a purge's anchor at 20"

# The same answer on a restored dump, from SQL and offline; a committed edit in
# tenant B first, so that the answer is not simply "verified".
db -c "UPDATE mcp_key_usage_logs SET success = NOT success WHERE tenant_id = '$b' AND seq = 5" >/dev/null
runuser -u postgres -- "$PGBIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -Fc -f "$work/chain.dump" chain
"${psql[@]}" -d postgres -c "CREATE DATABASE restored"
runuser -u postgres -- "$PGBIN/pg_restore" -h "$PGHOST" -p "$PGPORT" -d restored "$work/chain.dump"
verdicts="SELECT string_agg(tenant_id || ' ' || log || ' ' || verified || ' ' || COALESCE(broken_seq::text, '-') || ' ' || rows_checked, '; '
                            ORDER BY tenant_id, log DESC) FROM verify_mcp_audit()"
source_verdict=$(db -c "$verdicts")
restored_verdict=$("${psql[@]}" -d restored -c "$verdicts")
check "the restored dump gives the same SQL verdict ($restored_verdict)" \
    test "$restored_verdict" = "$source_verdict" \
         -a "$source_verdict" = "$a usage true - 28; $a activity true - 28; $b usage false 5 4; $b activity true - 13"
out=$(DATABASE_URL="host=$PGHOST port=$PGPORT user=postgres dbname=restored" "$mcp_auth" --json audit verify) && rc=0 || rc=$?
offline_verdict=$(python3 -c '
import json, sys
print("; ".join("%s %s %s %s %s" % (v["tenant_id"], v["log"], str(v["verified"]).lower(), v["broken_seq"] or "-", v["rows_checked"])
                for v in json.loads(sys.argv[1])))' "$(head -1 <<<"$out")")
check "the offline verifier on the restored dump agrees (rc $rc): $offline_verdict" \
    test "$rc" = 1 -a "$offline_verdict" = "$source_verdict"

# Verifying while the ledger writes (tenant C, a third): each verifier reads the
# head, the anchor and the rows in one snapshot; read apart, rows written in
# between would look inserted after the head. The SQL verifier in a transaction
# that has written (whose statements each take a new snapshot) and offline.
c=c4a10000-0000-4000-8000-00000000000c
db -c "SELECT mes_seed_demo('$c', 5)" >/dev/null
key_c=$(db -c "SET mcp_auth.bcrypt_cost = 4" -c "SELECT api_key FROM generate_mcp_key('$c', 'C', p_rate_limit := 100000)" | tail -1)
calls "$key_c" 300 &
loader=$!
runs=0 wrong=""
while kill -0 "$loader" 2>/dev/null || [ "$runs" -lt 3 ]; do
    v=$(db -c "BEGIN" -c "SELECT pg_current_xact_id() IS NOT NULL" \
        -c "SELECT string_agg(verified || ' ' || COALESCE(problem, ''), '; ') FROM verify_mcp_audit('$c')" -c "COMMIT" | sed -n 2p)
    [ "$v" = "true ; true " ] || wrong="$wrong SQL: $v;"
    out=$(offline chain --tenant "$c") || wrong="$wrong offline: $out;"
    runs=$((runs + 1))
done
wait "$loader"
check "under load, $runs runs of both verifiers found nothing wrong:$wrong" test -z "$wrong"
check "(and the load's calls are all in the chain)" test "$(db -c "SELECT max(seq) FROM mcp_key_usage_logs WHERE tenant_id = '$c'")" = 300

# A purge while another session holds the log (the detach is skipped) must not
# remove newer rows while older days stay: tenant C's rows 1-3 in a day partition
# four days back, rows 4-6 three days back in the default partition (no day
# partition there), the chain re-linked over the new times.
db <<SQL >/dev/null
UPDATE mcp_key_usage_logs SET created_at = created_at - interval '4 days' WHERE tenant_id = '$c' AND seq <= 3;
SELECT maintain_mcp_log_partitions();
BEGIN;
UPDATE mcp_key_usage_logs SET created_at = created_at - interval '3 days' WHERE tenant_id = '$c' AND seq BETWEEN 4 AND 6;
$(relink "$c" 1)
COMMIT;
SQL
check "tenant C's rows are in a day partition and in the default one" test "$(db -c "SELECT string_agg(DISTINCT
    CASE WHEN tableoid::regclass::text LIKE '%default' THEN 'default' ELSE 'day' END, ',') FROM mcp_key_usage_logs
    WHERE tenant_id = '$c' AND seq <= 6")" = "day,default"
check "(and its chain verifies)" test "$(verified "$c")" = t
db -c "BEGIN" -c "SELECT count(*) FROM mcp_key_usage_logs" -c "SELECT pg_sleep(5)" -c "COMMIT" >/dev/null &
holder=$!
sleep 1
purged=$(db -c "SELECT purge_mcp_usage_logs('2 days')" 2>"$work/purge.err")
check "a purge that cannot detach the days removes nothing newer than them ($purged): $(cat "$work/purge.err")" \
    bash -c '[ "$1" = 0 ] && grep -q "skipped whole days" "$2"' _ "$purged" "$work/purge.err"
check "and tenant C's chain still verifies from its start" test "$(db -c \
    "SELECT verified || ' ' || first_seq FROM verify_mcp_audit('$c') WHERE log = 'usage'")" = "true 1"
wait "$holder"
purged=$(db -c "SELECT purge_mcp_usage_logs('2 days')")
check "once the log is free the purge removes all six ($purged)" test "$purged" = 6
check "and tenant C's chain verifies from the anchor at 6" test "$(db -c \
    "SELECT verified || ' ' || covered FROM verify_mcp_audit('$c') WHERE log = 'usage'")" = "true rows 7 to 300, after a purge's anchor at 6"

# A tenant's purge while maintenance moves its older rows out of the default
# partition (tenant E: rows 1-6 three days back, in the default partition): the
# purge waits for maintenance's commit, then deletes them where they now are.
e=c4a10000-0000-4000-8000-00000000000e
db -c "SELECT mes_seed_demo('$e', 5)" >/dev/null
key_e=$(db -c "SET mcp_auth.bcrypt_cost = 4" -c "SELECT api_key FROM generate_mcp_key('$e', 'E', p_rate_limit := 100000)" | tail -1)
calls "$key_e" 10
db <<SQL >/dev/null
BEGIN;
UPDATE mcp_key_usage_logs SET created_at = created_at - interval '3 days' WHERE tenant_id = '$e' AND seq <= 6;
$(relink "$e" 1)
COMMIT;
SQL
check "tenant E's first six rows wait in the default partition" test "$(db -c "SELECT count(*) FROM mcp_key_usage_logs_default
    WHERE tenant_id = '$e' AND seq <= 6")" = 6
"${psql[@]}" -d chain -c "CREATE ROLE chain_admin_e LOGIN IN ROLE mcp_admin" \
    -c "SELECT grant_mcp_tenant_admin('chain_admin_e', '$e')" >/dev/null
db -c "BEGIN" -c "SELECT maintain_mcp_log_partitions()" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
maintainer=$!
sleep 1
purged=$("${psql[@]}" -U chain_admin_e -d chain -c "SET mcp_auth.tenant_id = '$e'" -c "SELECT purge_mcp_usage_logs('2 days')")
wait "$maintainer"
check "a tenant's purge during maintenance removes all six rows ($purged)" test "$purged" = 6
check "and tenant E's chain verifies from the anchor at 6" test "$(db -c \
    "SELECT verified || ' ' || covered FROM verify_mcp_audit('$e') WHERE log = 'usage'")" = "true rows 7 to 10, after a purge's anchor at 6"

# Who may verify: an admin its own tenant only; a client nothing.
"${psql[@]}" -d chain -c "CREATE ROLE chain_admin LOGIN IN ROLE mcp_admin" \
    -c "SELECT grant_mcp_tenant_admin('chain_admin', '$a')" >/dev/null
check "a tenant admin verifies its own tenant" test "$("${psql[@]}" -U chain_admin -d chain \
    -c "SET mcp_auth.tenant_id = '$a'" -c "SELECT string_agg(DISTINCT tenant_id::text, ',') FROM verify_mcp_audit()" | tail -1)" = "$a"
err=$("${psql[@]}" -U chain_admin -d chain -c "SET mcp_auth.tenant_id = '$a'" \
    -c "SELECT * FROM verify_mcp_audit('$b')" 2>&1 || true)
check "and not another's: $err" grep -q "may only verify the audit of tenant $a" <<<"$err"
out=$(DATABASE_URL="host=$PGHOST port=$PGPORT user=chain_admin dbname=chain" "$mcp_auth" audit verify --tenant "$a" 2>&1) && rc=0 || rc=$?
check "a tenant admin verifies its own tenant offline too (rc $rc): $out" \
    bash -c '[ "$1" = 0 ] && grep -q "tenant $2 activity: verified" <<<"$3"' _ "$rc" "$a" "$out"
admin() { "${psql[@]}" -U chain_admin -d chain -c "SET mcp_auth.tenant_id = '$a'" "$@" 2>&1 | tail -1; }
check "a tenant admin still adds its application's own activity rows" test "$(admin \
    -c "INSERT INTO activity_log (tenant_id, user_name, action, entity_type) VALUES ('$a', 'alice', 'user_login', 'session')
        RETURNING action")" = user_login
err=$(admin -c "INSERT INTO activity_log (tenant_id, action, entity_type, seq, prev_hash, hash)
    SELECT tenant_id, action, entity_type, seq + 1, hash, hash FROM activity_log WHERE tenant_id = '$a' ORDER BY seq DESC LIMIT 1") || true
check "but may not write the chain's columns: $err" grep -q "permission denied for table activity_log" <<<"$err"
check "and its own rows leave the chain whole" test "$(verified "$a")" = t
err=$(admin -c "INSERT INTO activity_log (tenant_id, user_name, action, entity_type, entity_id, created_at)
    VALUES ('$a', 'MCP Server', 'mcp_execute', 'mcp_tool', 'delete_all_jobs', '-infinity')") || true
check "an admin may not date its rows (a back-dated MCP row would pass for one from before the chain): $err" \
    grep -q "permission denied for table activity_log" <<<"$err"
v=$("${psql[@]}" -U chain_admin -d chain -c "SET mcp_auth.tenant_id = '$a'" -c "BEGIN" \
    -c "INSERT INTO activity_log (tenant_id, user_name, action, entity_type, entity_id)
        VALUES ('$a', 'MCP Server', 'mcp_execute', 'mcp_tool', 'delete_all_jobs')" \
    -c "SELECT verified || ' ' || problem FROM verify_mcp_audit() WHERE log = 'activity'" -c "ROLLBACK" 2>&1)
check "an MCP activity row an admin adds (dated now) is found: $v" \
    grep -q "^false a row outside the chain is dated after the chain began" <<<"$v"
# A tenant with no chain yet is verified too: an MCP row its admin adds is found in
# every tenant's verification, not only in its own.
d=c4a10000-0000-4000-8000-00000000000d
"${psql[@]}" -d chain -c "CREATE ROLE chain_admin_d LOGIN IN ROLE mcp_admin" \
    -c "SELECT grant_mcp_tenant_admin('chain_admin_d', '$d')" >/dev/null
"${psql[@]}" -U chain_admin_d -d chain -c "SET mcp_auth.tenant_id = '$d'" \
    -c "INSERT INTO activity_log (tenant_id, user_name, action, entity_type, entity_id)
        VALUES ('$d', 'MCP Server', 'mcp_execute', 'mcp_tool', 'fetch_jobs')"
check "a forged MCP row of a tenant without a chain is found by the verification of all tenants" \
    test "$(db -c "SELECT string_agg(log || ' ' || verified, ', ' ORDER BY log) FROM verify_mcp_audit() WHERE tenant_id = '$d'")" \
        = "activity false, usage true"
out=$(offline chain) && rc=0 || rc=$?
check "and offline (rc $rc)" bash -c '[ "$1" = 1 ] && grep -q "tenant $2 activity: BROKEN" <<<"$3"' _ "$rc" "$d" "$out"
db -c "DELETE FROM activity_log WHERE tenant_id = '$d'" >/dev/null
# An admin's row whose metadata prints to more than a gigabyte (it is stored in
# 2 kB): a walk reads only the time of a row outside the chain, so every other
# tenant's verification goes on, and this one's flags the row.
"${psql[@]}" -U chain_admin_d -d chain -c "SET mcp_auth.tenant_id = '$d'" \
    -c "INSERT INTO activity_log (tenant_id, user_name, action, entity_type, entity_id, metadata)
        SELECT '$d', 'MCP Server', 'mcp_execute', 'mcp_tool', 'fetch_jobs', jsonb_agg(10::numeric ^ 131000)
          FROM generate_series(1, 8300)"
v=$(db -c "SELECT string_agg(DISTINCT CASE WHEN tenant_id = '$d' THEN 'd ' ELSE 'others ' END || verified, ', ')
             FROM verify_mcp_audit() WHERE log = 'activity'" 2>&1 || true)
check "a row that prints to a gigabyte stops no verification: $v" test "$v" = "d false, others true"
db -c "DELETE FROM activity_log WHERE tenant_id = '$d'" >/dev/null
"${psql[@]}" -d chain -c "CREATE ROLE chain_client LOGIN IN ROLE mcp_client" >/dev/null
err=$("${psql[@]}" -U chain_client -d chain -c "SELECT * FROM verify_mcp_audit()" 2>&1 || true)
check "an mcp_client login may not verify: $err" grep -q "permission denied" <<<"$err"
err=$("${psql[@]}" -U chain_client -d chain -c "SELECT mcp_audit_checkpoint()" 2>&1 || true)
check "nor write checkpoints: $err" grep -q "permission denied" <<<"$err"

w=c4a10000-0000-4000-8000-0000000000f1
awkward='{"zz": 1e2, "b": 1E+2, "aaa": -0, "c": 0.10, "big": 123456789012345678901234567890,
          "s": "\u00e9 \ud83d\ude00 \"q\" \t", "n": {"y": [], "x": {}}}'
# The writer links rows in Rust and the verifiers read them back in SQL: values whose
# stored form prints otherwise than they were sent (numbers jsonb normalizes, key
# order, escapes, networks), with tenant W's activity logging
# turned off for one of them (its activity chain skips it, its usage chain not).
db -c "SET mcp_auth.bcrypt_cost = 4" -c "SELECT generate_mcp_key('$w', 'W')" \
   -c "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs',
           '$awkward',
           true, NULL, 0, '192.168.0.0/24', E'agent\\t\"x\" é')
         FROM mcp_authentication_keys WHERE tenant_id = '$w'" \
   -c "INSERT INTO mcp_server_config (tenant_id, activity_logging) VALUES ('$w', false)" \
   -c "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs', '{\"a\": [1.000, 2e-3, -1.5E-7]}', false, 'failed: %s \"q\" é', 2147483647,
           '::ffff:10.1.2.3/128', NULL) FROM mcp_authentication_keys WHERE tenant_id = '$w'" \
   -c "UPDATE mcp_server_config SET activity_logging = true WHERE tenant_id = '$w'" \
   -c "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs', NULL, false, NULL, NULL, '10.0.0.1/32', '')
         FROM mcp_authentication_keys WHERE tenant_id = '$w'" >/dev/null
check "awkward values link as they print when read back; activity off skips only the activity chain" test "$(db -c \
    "SELECT string_agg(log || ' ' || verified || ' ' || rows_checked, '; ' ORDER BY log DESC)
       FROM verify_mcp_audit('$w')")" = "usage true 3; activity true 2"
check "the activity rows the writer made are what the statement makes with the chain off" test "$(db -c \
    "SELECT count(*) FROM activity_log a JOIN mcp_key_usage_logs u ON u.id = (a.metadata->>'usage_log_id')::uuid
       JOIN mcp_authentication_keys k ON k.id = u.key_id
      WHERE a.tenant_id = '$w' AND a.created_at = u.created_at AND a.user_id IS NULL AND a.user_name = 'MCP Server'
        AND a.action = CASE WHEN u.success THEN 'mcp_execute' ELSE 'mcp_error' END
        AND (a.entity_type, a.entity_id, a.entity_name) = ('mcp_tool', u.tool_name, u.tool_name)
        AND a.description = CASE WHEN u.success THEN format('Tool \"%s\" executed successfully', u.tool_name)
                                 ELSE format('Tool \"%s\" execution failed: %s', u.tool_name, u.error_message) END
        AND a.metadata = jsonb_build_object('key_id', u.key_id, 'key_name', k.name, 'key_prefix', k.key_prefix,
               'tool', u.tool_name, 'arguments', u.tool_arguments, 'success', u.success, 'error', u.error_message,
               'response_time_ms', u.response_time_ms, 'usage_log_id', u.id)")" = 2


# The writer keeps the heads itself and records them up to a second late. A writer
# that starts anew goes on from the table's heads and the rows after them; one that
# finds the table made anew (the extension dropped and created again) starts over.
v=$(db -c "SELECT string_agg(seq::text || '=' || (hash = (SELECT l.hash FROM mcp_key_usage_logs l
           WHERE l.tenant_id = h.tenant_id AND l.seq = h.seq))::text, ',') FROM mcp_audit_heads h
           WHERE h.tenant_id = '$w' AND h.log = 'usage'")
db -c "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs', NULL, true, NULL, 1, NULL, NULL)
         FROM mcp_authentication_keys WHERE tenant_id = '$w'" >/dev/null
lag=$(db -c "SELECT h.seq < (SELECT max(seq) FROM mcp_key_usage_logs WHERE tenant_id = '$w') FROM mcp_audit_heads h
             WHERE h.tenant_id = '$w' AND h.log = 'usage'")
"${psql[@]}" -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE backend_type = 'mcp_auth ledger'" >/dev/null
sleep 1
db -c "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs', NULL, true, NULL, 2, NULL, NULL)
         FROM mcp_authentication_keys WHERE tenant_id = '$w'" >/dev/null
check "a new writer goes on from the rows a killed one wrote past the recorded head (was $v, lagging: $lag)" test "$(db -c \
    "SELECT string_agg(log || ' ' || verified || ' ' || rows_checked, '; ' ORDER BY log DESC)
       FROM verify_mcp_audit('$w')")" = "usage true 5; activity true 4"
"${psql[@]}" -d postgres -c "CREATE DATABASE chain_again"
again() { "${psql[@]}" -d chain_again "$@"; }
again -c "CREATE EXTENSION mcp_auth" -c "SET mcp_auth.bcrypt_cost = 4" -c "SELECT generate_mcp_key('$w', 'W')" >/dev/null
logged() { again -c "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs', NULL, true, NULL, 1, NULL, NULL)
                     FROM mcp_authentication_keys WHERE tenant_id = '$w'" >/dev/null; }
logged; logged
again -c "DROP EXTENSION mcp_auth" -c "CREATE EXTENSION mcp_auth" -c "SET mcp_auth.bcrypt_cost = 4" \
      -c "SELECT generate_mcp_key('$w', 'W')" >/dev/null
logged
check "the extension made anew while its writer runs: the chain starts again at 1" test "$(again -c \
    "SELECT string_agg(log || ' ' || verified || ' ' || first_seq || '-' || last_seq, '; ' ORDER BY log DESC)
       FROM verify_mcp_audit('$w')")" = "usage true 1-1; activity true 1-1"

# A superuser's edits of the recorded heads (the attacks of a review): the writer
# neither spins nor restarts a chain nor spreads a forged time, and a checkpoint is
# taken from the rows themselves, whatever the recorded heads say.
wlog() { db -c "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs', NULL, true, NULL, 1, NULL, NULL)
                  FROM mcp_authentication_keys WHERE tenant_id = '$w'" >/dev/null; }
wlog; wlog
db -c "DELETE FROM mcp_audit_heads WHERE tenant_id = '$w'" >/dev/null
sleep 5
check "after its heads were deleted under it, the writer leaves when idle (no spinning)" test "$(db -c \
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'mcp_auth ledger'")" = 0
wlog
check "and the next row goes on from the last row, not from seq 1" test "$(db -c \
    "SELECT count(*) || ' ' || count(DISTINCT seq) || ' ' || max(seq) FROM mcp_key_usage_logs WHERE tenant_id = '$w'")" = "8 8 8"
check "and both chains verify" test "$(verified "$w")" = t
db -c "UPDATE mcp_audit_heads h SET seq = l.seq, hash = l.hash, at = l.created_at
         FROM mcp_key_usage_logs l WHERE h.tenant_id = '$w' AND h.log = 'usage' AND l.tenant_id = '$w' AND l.seq = 5" >/dev/null
check "a checkpoint is taken from the rows, not from a recorded head left behind" test "$(db -c \
    "SELECT seq FROM mcp_audit_checkpoint() WHERE tenant_id = '$w' AND log = 'usage'")" = 8
db -c "UPDATE mcp_audit_heads SET at = '2100-01-01' WHERE tenant_id = '$w'" >/dev/null
"${psql[@]}" -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE backend_type = 'mcp_auth ledger'" >/dev/null
wlog
check "a head dated 2100 by an edit does not date the rows after it" test "$(db -c \
    "SELECT max(created_at) < now() + interval '1 minute' FROM mcp_key_usage_logs WHERE tenant_id = '$w'")" = t
check "(and they still follow the last row)" test "$(db -c \
    "SELECT count(*) || ' ' || max(seq) FROM mcp_key_usage_logs WHERE tenant_id = '$w'")" = "9 9"

# (A second round.) A head whose hash is one byte long, written by an edit, must not
# shift the links of another tenant written in the same round; a head moved back
# with a current time under a running writer must not fork the chain; a head at the
# highest seq refuses the next row rather than wrap around.
x=c4a10000-0000-4000-8000-0000000000f2
db -c "SET mcp_auth.bcrypt_cost = 4" -c "SELECT generate_mcp_key('$x', 'X')" >/dev/null
db -c "SELECT mcp_ledger_sync()" >/dev/null
db -c "UPDATE mcp_audit_heads SET hash = '\\x00' WHERE tenant_id = '$w' AND log = 'usage'" >/dev/null
"${psql[@]}" -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE backend_type = 'mcp_auth ledger'" >/dev/null
{ for i in 1 2 3; do
    echo "SELECT log_mcp_key_usage('$x', id, 'fetch_jobs', NULL, true, NULL, 1, NULL, NULL) FROM mcp_authentication_keys WHERE tenant_id = '$x';"
    echo "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs', NULL, true, NULL, 1, NULL, NULL) FROM mcp_authentication_keys WHERE tenant_id = '$w';"
  done; } | db >/dev/null &
{ for i in 1 2 3; do
    echo "SELECT log_mcp_key_usage('$x', id, 'fetch_jobs', NULL, true, NULL, 1, NULL, NULL) FROM mcp_authentication_keys WHERE tenant_id = '$x';"
  done; } | db >/dev/null
wait
check "a one-byte head hash breaks no chain, its tenant's nor another's in the same rounds" test "$(db -c \
    "SELECT string_agg(log || ' ' || verified, '; ' ORDER BY tenant_id, log DESC) FROM verify_mcp_audit()
      WHERE tenant_id IN ('$x', '$w')")" = "usage true; activity true; usage true; activity true"
db -c "SELECT mcp_ledger_sync()" >/dev/null
wlog
db -c "UPDATE mcp_audit_heads h SET seq = l.seq, hash = l.hash, at = now()
         FROM mcp_key_usage_logs l WHERE h.tenant_id = '$w' AND h.log = 'usage' AND l.tenant_id = '$w' AND l.seq = 3" >/dev/null
wlog; wlog
check "a head moved back and dated now: the rows go on after the last row, no seq twice" test "$(db -c \
    "SELECT (count(*) = count(DISTINCT seq) AND max(seq) = count(*))::text || ' ' || (SELECT verified FROM verify_mcp_audit('$w') WHERE log = 'usage')
       FROM mcp_key_usage_logs WHERE tenant_id = '$w'")" = "true true"
db -c "SELECT mcp_ledger_sync()" >/dev/null
db -c "UPDATE mcp_audit_heads SET seq = 9223372036854775807 WHERE tenant_id = '$w' AND log = 'usage'" >/dev/null
"${psql[@]}" -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE backend_type = 'mcp_auth ledger'" >/dev/null
err=$(db -c "SELECT log_mcp_key_usage('$w', id, 'fetch_jobs', NULL, true, NULL, 1, NULL, NULL)
               FROM mcp_authentication_keys WHERE tenant_id = '$w'" 2>&1 || true)
check "a head at the highest seq: the call fails closed ($err), and no row wraps around" test "$(db -c \
    "SELECT count(*) FROM mcp_key_usage_logs WHERE tenant_id = '$w' AND seq < 0")" = 0

# (A fourth round.) A writer killed outright leaves its heads behind; the writers
# after it search, and bring them all up to date before they say they are: a
# tenant first seen by a later writer must not fork. A usage head made no link by
# an edit, beside a good activity head, is searched for, not taken as none.
y=c4a10000-0000-4000-8000-0000000000f3
z=c4a10000-0000-4000-8000-0000000000f4
db -c "SET mcp_auth.bcrypt_cost = 4" -c "SELECT generate_mcp_key('$y', 'Y')" -c "SELECT generate_mcp_key('$z', 'Z')" >/dev/null
ylog() { db -c "SELECT log_mcp_key_usage('$1', id, 'fetch_jobs', NULL, true, NULL, 1, NULL, NULL)
                  FROM mcp_authentication_keys WHERE tenant_id = '$1'" >/dev/null; }
for i in 1 2 3 4 5 6; do ylog "$y"; done
pid=$(db -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'mcp_auth ledger'")
stale=$(db -c "SELECT (SELECT max(seq) FROM mcp_key_usage_logs WHERE tenant_id = '$y') - seq FROM mcp_audit_heads
               WHERE tenant_id = '$y' AND log = 'usage'")
[ -n "$pid" ] && kill -9 "$pid"
for i in $(seq 1 50); do db -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
ylog "$z"; sleep 4; ylog "$z"; sleep 4
ylog "$y"
check "after a writer killed outright (its heads $stale rows behind), a tenant first seen two writers later does not fork" \
    test "$(db -c "SELECT string_agg(log || ' ' || verified, '; ' ORDER BY log DESC) FROM verify_mcp_audit('$y')")" = "usage true; activity true"
db -c "SELECT mcp_ledger_sync()" >/dev/null
db -c "UPDATE mcp_audit_heads SET hash = '\\x00' WHERE tenant_id = '$z' AND log = 'usage'" >/dev/null
ylog "$z"; sleep 4; ylog "$y"; sleep 4
ylog "$z"; ylog "$z"
check "a usage head made no link by an edit: the chain goes on, not from seq 1" test "$(db -c \
    "SELECT (count(*) = count(DISTINCT seq) AND min(seq) = 1 AND max(seq) = count(*))::text
       FROM mcp_key_usage_logs WHERE tenant_id = '$z'")" = true

finish audit_chain
