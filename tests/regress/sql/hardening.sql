-- A key holder who does not play along: the MCP server's login (a member of
-- mcp_client) used directly, as anyone holding a key can.
CREATE EXTENSION IF NOT EXISTS mcp_mes;
SET mcp_auth.bcrypt_cost = 4;
\set t '''4a000000-0000-4000-8000-00000000004a'''
SELECT mes_seed_demo(:t, 6)->'jobs' AS jobs;
CREATE ROLE regress_intruder LOGIN IN ROLE mcp_client;
CREATE ROLE regress_hard_admin LOGIN IN ROLE mcp_admin;
SELECT grant_mcp_tenant_admin('regress_hard_admin', :t) AS bound;
SELECT api_key AS narrow, key_id AS narrow_id
  FROM generate_mcp_key(:t, 'Narrow', p_allowed_tools := '["fetch_jobs"]', p_rate_limit := 10) \gset
SELECT api_key AS wide, key_id AS wide_id FROM generate_mcp_key(:t, 'Wide', p_rate_limit := 1000) \gset
SELECT api_key AS revoked, key_id AS revoked_id FROM generate_mcp_key(:t, 'Revoked') \gset
SELECT revoke_mcp_key(:'revoked_id');
-- A tool with a secret-named, length-limited field, and one that takes any property.
CREATE FUNCTION regress_login(p_args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"ok": 1}'::jsonb $$;
SELECT register_mcp_tool('regress_login', 'test', 'Checks a password',
       '{"type": "object", "properties": {"user": {"type": "string"}, "password": {"type": "string", "maxLength": 8}}}',
       'regress_login(jsonb)'::regprocedure);

-- 3. No table, view or sequence of either extension is open to mcp_client.
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname IN ('mcp_auth', 'mcp_mes')
 WHERE has_table_privilege('mcp_client', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
    OR has_any_column_privilege('mcp_client', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
 ORDER BY 1, 2;

-- What mcp_client may execute: exactly the functions the README's security model lists.
SELECT string_agg(p.proname, ', ' ORDER BY p.proname) AS mcp_client_may_call
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND has_function_privilege('mcp_client', p.oid, 'EXECUTE')
   AND NOT has_function_privilege('public', p.oid, 'EXECUTE');

\c - regress_intruder
-- Plain SQL with a validated key reads nothing: tools only.
BEGIN;
SELECT key_name FROM validate_mcp_key(:'narrow');
SELECT count(*) FROM issues;
ROLLBACK;
BEGIN;
SELECT key_name FROM validate_mcp_key(:'narrow');
SELECT count(*) FROM tasks;
ROLLBACK;

-- 4. Whatever the caller does with its transaction once it has a result, the call's
-- audit row and charge stay: the ledger made them durable before the result left.
-- The limit is 10 a minute. Each attempt below sees its results, then undoes its
-- transaction; 11 results are asked for, 10 come back, and 10 rows stay (checked
-- as postgres below).
BEGIN;
SELECT call_tool(:'narrow', 'fetch_jobs', '{"limit": 1}')->'ok' AS in_a_block;
ROLLBACK;
SELECT call_tool(:'narrow', 'fetch_jobs', '{"limit": 1}')->'ok' AS with_a_failing_statement \; SELECT 1 / 0;
-- The issue's first reproduction: a cast that fails after the result exists.
SELECT (call_tool(:'narrow', 'fetch_jobs', '{"limit": 1}')->>'ok')::int AS failing_cast;
-- The second: results shown from a PL/pgSQL loop, then an exception.
SET x.k = :'narrow';
DO $$ DECLARE r record;
BEGIN
    FOR r IN SELECT call_tool(current_setting('x.k'), 'fetch_jobs', '{"limit": 1}')->'ok' AS c
               FROM generate_series(1, 2) LOOP
        RAISE NOTICE 'result: %', r.c;
    END LOOP;
    RAISE EXCEPTION 'undo';
END $$;
RESET x.k;
-- A cursor: two rows fetched, then ROLLBACK.
BEGIN;
DECLARE c CURSOR FOR SELECT call_tool(:'narrow', 'fetch_jobs', '{"limit": 1}')->'ok' AS ok
                       FROM generate_series(1, 5);
FETCH 2 FROM c;
ROLLBACK;
SELECT call_tool(:'narrow', 'fetch_jobs', '{"limit": 1}')->'ok' AS ok
 UNION ALL SELECT (1 / (random() * 0)::int)::text::jsonb;
CREATE FUNCTION pg_temp.show_then_fail(r jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'result: %', r; RAISE EXCEPTION 'and roll it back'; END $$;
\set VERBOSITY terse
SELECT pg_temp.show_then_fail(call_tool(:'narrow', 'fetch_jobs', '{"limit": 1}')->'ok');
\set VERBOSITY default
-- Two calls in one statement: the 10th result, then the limit.
SELECT call_tool(:'narrow', 'fetch_jobs', '{"limit": 1}')->'ok' AS tenth,
       call_tool(:'narrow', 'fetch_jobs', '{"limit": 1}')->'error'->>'type' AS eleventh;
-- From a function, in a transaction that is rolled back: refused by the limit.
-- (psql would echo the generated statements, and with them the key.)
\set ECHO none
SELECT format($f$CREATE FUNCTION pg_temp.call_it() RETURNS jsonb LANGUAGE plpgsql
                 AS $b$ BEGIN RETURN call_tool(%L, 'fetch_jobs', '{"limit": 1}'); END $b$$f$, :'narrow') \gexec
\set ECHO all
BEGIN;
SELECT pg_temp.call_it()->'error'->>'type' AS from_a_function;
ROLLBACK;
-- And one statement each: 12 more calls, all over the limit now.
\set ECHO none
SELECT format('SELECT call_tool(%L, ''fetch_jobs'', ''{"limit": 1}'')->''error''->>''type'' AS outcome', :'narrow')
  FROM generate_series(1, 12) \gexec
\set ECHO all

-- 5. Bounded audit. Arguments over 64 kB are refused before anything reads them...
SELECT call_tool(:'wide', 'fetch_jobs', jsonb_build_object('search', repeat('x', 100000)))->'error' AS too_big;
-- ...a revoked key's call stores no arguments, whatever their size, and capped texts...
SELECT call_tool(:'revoked', 'fetch_jobs', jsonb_build_object('search', repeat('x', 100000)),
                 jsonb_build_object('user_agent', repeat('u', 10000)))->'error'->>'type' AS revoked;
-- ...and so does a call over the rate limit.
SELECT call_tool(:'narrow', 'fetch_jobs', jsonb_build_object('search', repeat('y', 60000)))->'error'->>'type' AS limited;
-- The Integration Guide's logging function keeps a marker instead of oversized arguments.
BEGIN;
SELECT key_name FROM validate_mcp_key(:'wide');
SELECT log_mcp_key_usage(:t, :'wide_id', 'manual', jsonb_build_object('blob', repeat('z', 100000)),
                         false, repeat('e', 100000)) IS NOT NULL AS logged;
COMMIT;

-- 6. Messages name the field and the rule, never the value; keys used as property
-- names are redacted like any other key-shaped text.
SELECT call_tool(:'wide', 'regress_login', '{"user": "ann", "password": "Tr0ub4dor&3-correct-horse"}')->'error' AS secret_field;
SELECT call_tool(:'wide', 'regress_login', jsonb_build_object(:'wide', 1))->'ok' AS key_as_name;
SELECT call_tool(:'wide', 'fetch_jobs', jsonb_build_object(:'wide', 1))->'error'->>'message' AS m \gset
SELECT replace(:'m', left(:'wide', 16), '<prefix>') AS key_as_unknown_name, position(:'wide' IN :'m') AS key_shown;

-- 7. Every client mistake gets an envelope, not an ERROR.
SELECT call_tool(:'wide', 'fetch_jobs', ('{"a": ' || repeat('[', 128) || repeat(']', 128) || '}')::jsonb)->'error' AS deep;
SELECT call_tool(:'wide', 'fetch_jobs', '{"limit": 1e400}')->'error' AS huge_number;
SELECT call_tool(:'wide', 'fetch_jobs', '{}', ('{"a": ' || repeat('[', 200) || repeat(']', 200) || '}')::jsonb)->'ok' AS deep_client_info;
-- A read-only tool needs nothing of the caller's transaction: it runs in a
-- read-only one and at any isolation level.
SET default_transaction_read_only = on;
SELECT call_tool(:'wide', 'fetch_jobs', '{}')->'ok' AS read_only;
RESET default_transaction_read_only;
SET default_transaction_isolation = 'repeatable read';
SELECT call_tool(:'wide', 'fetch_jobs', '{}')->'ok' AS repeatable_read;
RESET default_transaction_isolation;
-- No log level tells why a key was refused.
SET client_min_messages = debug1;
SELECT * FROM validate_mcp_key(:'revoked');
RESET client_min_messages;

\c - postgres
-- Finding 4: every call that ran left its row, none was rolled back; the 10 results
-- delivered are the 10 successful rows, and the limit held.
SELECT count(*) FILTER (WHERE success) AS ok, count(*) FILTER (WHERE error_message = 'Rate limit exceeded') AS limited
  FROM mcp_key_usage_logs WHERE key_id = :'narrow_id';
-- Finding 5: every row small; arguments kept only for calls that passed the limit.
SELECT k.name, l.tool_name, pg_column_size(l.*) < 4096 AS small,
       l.tool_arguments IS NOT NULL AS has_arguments,
       replace(left(l.tool_arguments::text, 60), left(:'wide', 16), '<prefix>') AS arguments, length(l.error_message) AS error_length,
       length(l.user_agent) AS agent_length
  FROM mcp_key_usage_logs l JOIN mcp_authentication_keys k ON k.id = l.key_id
 WHERE l.tenant_id = :t AND (l.tool_name IN ('manual', 'regress_login')
       OR length(l.tool_arguments::text) > 1000 OR l.key_id = :'revoked_id'
       OR l.tool_arguments::text LIKE '%withheld%')
 ORDER BY l.created_at;
SELECT max(pg_column_size(a.*)) < 4096 AS activity_rows_small FROM activity_log a WHERE a.tenant_id = :t;
-- Finding 6: neither the password nor the key is stored anywhere.
SELECT count(*) AS password_stored FROM (
    SELECT tool_arguments::text || coalesce(error_message, '') AS s FROM mcp_key_usage_logs
    UNION ALL SELECT metadata::text || description FROM activity_log) x
 WHERE position('Tr0ub4dor' IN s) > 0;
SELECT count(*) AS key_stored FROM (
    SELECT tool_arguments::text || coalesce(error_message, '') AS s FROM mcp_key_usage_logs
    UNION ALL SELECT metadata::text || description FROM activity_log) x
 WHERE position(substr(:'wide', 17) IN s) > 0;

-- Finding 2: a call takes no advisory lock (any role can take those), nor any lock
-- of its own: the limiter's windows and the ledger's queue are in shared memory.
BEGIN;
SELECT call_tool(:'wide', 'fetch_jobs', '{"limit": 1}')->'ok' AS ok;
SELECT count(*) AS key FROM generate_mcp_key(:t, 'Locks');
SELECT call_tool(:'wide', 'create_job', '{"customer": "Locks"}')->'ok' AS created;
SELECT locktype, count(*) FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype IN ('advisory', 'userlock') GROUP BY 1;
ROLLBACK;

-- Finding 7: an admin cannot bring a rotated-out key back, and may change its tools.
SELECT key_id AS rotated_to FROM rotate_mcp_key(:'narrow_id', interval '1 hour') \gset
\c - regress_hard_admin
SET mcp_auth.tenant_id = '4a000000-0000-4000-8000-00000000004a';
UPDATE mcp_authentication_keys SET expires_at = now() + interval '1 year' WHERE id = :'narrow_id';
UPDATE mcp_authentication_keys SET expires_at = NULL WHERE id = :'narrow_id';
UPDATE mcp_authentication_keys SET expires_at = now() WHERE id = :'narrow_id';
UPDATE mcp_authentication_keys SET allowed_tools = '["fetch_jobs", "fetch_parts"]' WHERE id = :'rotated_to';
UPDATE mcp_authentication_keys SET allowed_tools = '[]' WHERE id = :'rotated_to';
SELECT name, status, allowed_tools FROM mcp_keys WHERE tenant_id = :t AND name = 'Narrow' ORDER BY status;

\c - postgres
DELETE FROM mcp_tools WHERE name = 'regress_login';
DROP FUNCTION regress_login(jsonb);
DROP ROLE regress_intruder, regress_hard_admin;
