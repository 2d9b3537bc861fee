-- The extension's schema cannot be turned against it. Its SECURITY DEFINER functions
-- run as the extension's owner (a superuser); had they resolved an operator or a
-- function to one that a less-privileged role planted in their schema, that role's
-- code would have run as superuser.
CREATE DATABASE regress_shadow;
\c regress_shadow
SET client_min_messages = warning;
CREATE ROLE regress_planter LOGIN;

-- Installing into a schema that others may create in is refused, naming them.
CREATE SCHEMA open_to_all;
GRANT CREATE ON SCHEMA open_to_all TO PUBLIC;
CREATE EXTENSION mcp_auth SCHEMA open_to_all;
CREATE SCHEMA open_to_one;
GRANT CREATE ON SCHEMA open_to_one TO regress_planter;
CREATE EXTENSION mcp_auth SCHEMA open_to_one;
DROP SCHEMA open_to_all, open_to_one;

-- A private schema is accepted. Afterwards it is made writable for the planter, as a
-- careless GRANT (or an older PostgreSQL's public schema) would.
CREATE SCHEMA mcp;
CREATE EXTENSION mcp_auth SCHEMA mcp;
CREATE ROLE regress_shadow_server LOGIN IN ROLE mcp_client;
CREATE ROLE regress_shadow_admin LOGIN IN ROLE mcp_admin;
SELECT mcp.grant_mcp_tenant_admin('regress_shadow_admin', '5a000000-0000-4000-8000-00000000005a') AS bound;
GRANT USAGE, CREATE ON SCHEMA mcp TO regress_planter;
-- A tool, its handler in a schema nobody else may create in.
CREATE SCHEMA tools;
GRANT USAGE ON SCHEMA tools TO mcp_tool_runner;
CREATE FUNCTION tools.echo(p_args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT p_args $$;
SELECT mcp.register_mcp_tool('echo', 'test', 'Returns its arguments',
       '{"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}}',
       'tools.echo(jsonb)'::regprocedure);

\c - regress_planter
SET client_min_messages = warning;
-- Every call of a planted object is recorded here, whoever makes it.
CREATE TABLE mcp.shadow_calls (what text);
GRANT INSERT, SELECT ON mcp.shadow_calls TO PUBLIC;
-- Operators: for each operator name the definer code uses, every pair of the types
-- it works with, so that for any expression some planted operator would be an
-- exact (or better) match than pg_catalog's.
DO $plant$
DECLARE
    types text[] := ARRAY['integer', 'bigint', 'numeric', 'text', 'uuid', 'timestamp with time zone',
                          'interval', 'jsonb', 'boolean', 'double precision'];
    ops text[] := ARRAY['=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '||', '~', '~~*',
                        '->', '->>', '@>', '?'];
    op text; l text; r text; result text; n int := 0;
BEGIN
    FOREACH op IN ARRAY ops LOOP
        FOREACH l IN ARRAY types LOOP
            FOREACH r IN ARRAY types LOOP
                n := n + 1;
                result := CASE WHEN op IN ('=', '<>', '<', '>', '<=', '>=', '~', '~~*', '@>', '?')
                               THEN 'boolean' WHEN op IN ('||', '->>') THEN 'text' ELSE l END;
                EXECUTE format($f$CREATE FUNCTION mcp.shadow_op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS
                    $b$BEGIN INSERT INTO mcp.shadow_calls VALUES (%L); RAISE WARNING 'planted operator %s called'; RETURN NULL; END$b$$f$,
                    n, l, r, result, op || ' (' || l || ', ' || r || ')', op);
                EXECUTE format('CREATE OPERATOR mcp.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = mcp.shadow_op_%s)',
                               op, l, r, n);
            END LOOP;
        END LOOP;
    END LOOP;
END
$plant$;
-- Functions: each name the definer code calls, with none, one or two arguments of
-- those types.
DO $plant$
DECLARE
    types text[] := ARRAY['integer', 'bigint', 'numeric', 'text', 'uuid', 'timestamp with time zone',
                          'interval', 'jsonb', 'boolean', 'double precision'];
    names text[] := ARRAY['now', 'statement_timestamp', 'clock_timestamp', 'gen_random_uuid', 'sum',
                          'max', 'min', 'count', 'round', 'ceil', 'left', 'length', 'btrim', 'lower',
                          'format', 'jsonb_build_object', 'jsonb_agg', 'date_trunc', 'quote_ident',
                          'quote_literal', 'string_agg', 'array_position', 'date_part', 'to_jsonb',
                          'jsonb_typeof', 'jsonb_path_exists', 'pg_notify', 'extract', 'abs',
                          'jsonb_array_length', 'jsonb_array_elements_text', 'has_schema_privilege'];
    f text; a text; b text; n int := 0;
BEGIN
    FOREACH f IN ARRAY names LOOP
        n := n + 1;
        EXECUTE format($d$CREATE FUNCTION mcp.%I() RETURNS text LANGUAGE plpgsql AS
            $b$BEGIN INSERT INTO mcp.shadow_calls VALUES (%L); RAISE WARNING 'planted function %s called'; RETURN NULL; END$b$$d$,
            f, f || '()', f);
        FOREACH a IN ARRAY types LOOP
            EXECUTE format($d$CREATE FUNCTION mcp.%I(%s) RETURNS text LANGUAGE plpgsql AS
                $b$BEGIN INSERT INTO mcp.shadow_calls VALUES (%L); RAISE WARNING 'planted function %s called'; RETURN NULL; END$b$$d$,
                f, a, f || '(' || a || ')', f);
            FOREACH b IN ARRAY types LOOP
                EXECUTE format($d$CREATE FUNCTION mcp.%I(%s, %s) RETURNS text LANGUAGE plpgsql AS
                    $b$BEGIN INSERT INTO mcp.shadow_calls VALUES (%L); RAISE WARNING 'planted function %s called'; RETURN NULL; END$b$$d$,
                    f, a, b, f || '(' || a || ', ' || b || ')', f);
            END LOOP;
        END LOOP;
    END LOOP;
END
$plant$;
SELECT count(*) > 1500 AS operators_planted FROM pg_operator WHERE oprnamespace = 'mcp'::regnamespace;
SELECT count(*) > 3000 AS functions_planted FROM pg_proc WHERE pronamespace = 'mcp'::regnamespace
   AND proname NOT LIKE 'shadow_op_%' AND proowner = 'regress_planter'::regrole;

-- Now every entry point, by every kind of caller.
\c - postgres
SET search_path = public;
SET mcp_auth.bcrypt_cost = 4;
SELECT key_id AS k_id, api_key AS k
  FROM mcp.generate_mcp_key('5a000000-0000-4000-8000-00000000005a', 'Shadowed', p_rate_limit := 2,
                            p_expires_at := now() + interval '1 day') \gset
SELECT key_id AS old_id FROM mcp.generate_mcp_key('5a000000-0000-4000-8000-00000000005a', 'Old') \gset
SELECT count(*) AS rotated FROM mcp.rotate_mcp_key(:'old_id', interval '1 hour');
SELECT mcp.disable_mcp_key(:'old_id'), mcp.enable_mcp_key(:'old_id'), mcp.revoke_mcp_key(:'old_id');

\c - regress_shadow_server
SET search_path = public;
SELECT mcp.call_tool(:'k', 'echo', '{"n": 1}')->'ok' AS first;
SELECT mcp.call_tool(:'k', 'echo', '{"n": 9}')->'error'->>'type' AS second_invalid;
-- Over the limit: the retry-after arithmetic runs.
SELECT mcp.call_tool(:'k', 'echo', '{"n": 1}')->'error'->>'type' AS third_limited;
SELECT jsonb_array_length(mcp.list_tools(:'k')->'result'->'tools') AS tools;
SELECT mcp.call_tool('mcp_live_000000000000000000000000000000003teN4T', 'echo')->'error'->>'type' AS bad_key;
BEGIN;
SELECT key_name FROM mcp.validate_mcp_key(:'k');
SELECT mcp.check_mcp_tool_permission(:'k_id', 'echo') AS allowed;
SELECT allowed FROM mcp.check_mcp_rate_limit(:'k_id');
SELECT mcp.log_mcp_key_usage(tenant_id, :'k_id', 'echo', '{"password": "x"}', false, 'failed', 12)
       IS NOT NULL AS logged FROM mcp.get_tenant_info() t(tenant_id);
SELECT total_requests, failed_requests FROM mcp.get_mcp_key_stats(:'k_id');
SELECT (mcp.get_mcp_server_config()).server_name;
SELECT mcp.record_mcp_server_health('online', 5) IS NOT NULL AS health;
SELECT mcp.log_mcp_server_event('startup', 'started', 'info') IS NOT NULL AS event;
COMMIT;

\c - regress_shadow_admin
SET search_path = public;
SET mcp_auth.tenant_id = '5a000000-0000-4000-8000-00000000005a';
SELECT status FROM mcp.get_mcp_server_status();
SELECT count(*) > 0 AS logs FROM mcp.get_mcp_server_logs(p_level := 'info', p_search := 'start');
SELECT (mcp.update_mcp_server_config(p_server_name := 'shadowed')).server_name;
SELECT mcp.purge_mcp_usage_logs(interval '30 days') AS purged;
UPDATE mcp.mcp_authentication_keys SET allowed_tools = '["echo"]' WHERE id = :'k_id';

\c - postgres
-- The notifier worker (it runs as a superuser) has delivered the logged calls.
DO $wait$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM mcp.mcp_activity_outbox);
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$wait$;
SELECT count(*) AS still_queued FROM mcp.mcp_activity_outbox;
SELECT count(*) AS planted_calls FROM mcp.shadow_calls;
DROP EXTENSION mcp_auth;
\c mcp_regress
DROP DATABASE regress_shadow;
DROP ROLE regress_planter, regress_shadow_server, regress_shadow_admin;
