-- Issue 18, item 6, as a key holder with the MCP server's login (mcp_client): what
-- it sends is stored redacted, whatever the spelling. Before 2.4.0, properties named
-- pwd, passphrase, auth, cookie or key, a homoglyph "pаssword" (Cyrillic а), a key
-- in upper case and a key split across two fields were stored in clear, and a
-- handler's data exception repeated the value it refused.
CREATE EXTENSION IF NOT EXISTS mcp_mes;
SET mcp_auth.bcrypt_cost = 4;
\set t '''d6000000-0000-4000-8000-0000000000d6'''
CREATE ROLE regress_red_server LOGIN IN ROLE mcp_client;
SELECT api_key AS k, key_id AS k_id, key_prefix AS k_prefix FROM generate_mcp_key(:t, 'Red') \gset
SELECT api_key AS other, key_prefix AS other_prefix FROM generate_mcp_key(:t, 'Leaked') \gset

\c - regress_red_server
BEGIN;
SELECT key_name FROM validate_mcp_key(:'k');
SELECT log_mcp_key_usage(:t, :'k_id', 'fetch_jobs', jsonb_build_object(
    'pwd', 's1', 'passphrase', 's2', 'auth', 's3', 'cookie', 's4', 'key', 's5',
    'p' || chr(1072) || 'ssword', 's6',            -- Cyrillic а
    chr(65360) || 'assword', 's7',                 -- full-width ｐ
    'Set-Cookie', 's8', 'user_pin', 's9',
    'note', 'shouting ' || upper(:'other'),
    'first_half', left(:'other', 9 + 20), 'second_half', substr(:'other', 30),
    'short', left(:'other', 9 + 7),
    'key_id', 'kept', 'author', 'kept', 'status', 'kept')) IS NOT NULL AS logged;
-- Found by an attacker helper: a key's body alone, a key split by a separator or a
-- space, behind an invisible or full-width prefix, or in the tool name; and more names.
SELECT log_mcp_key_usage(:t, :'k_id', 'x' || substr(:'other', 10), jsonb_build_object(
    'body', 'body:' || substr(:'other', 10),
    'dash', left(:'other', 17) || '-' || substr(:'other', 18),
    'space', left(:'other', 16) || ' ' || substr(:'other', 17),
    'zero_width', 'mcp_live_' || chr(8203) || substr(:'other', 10),
    'full_width', 'ｍｃｐ＿ｌｉｖｅ＿' || substr(:'other', 10),
    'hyphens', 'mcp-live-' || substr(:'other', 10),
    'nested', '{"password": "s1"}',
    'privkey', 's2', 'otp_code', 's3', 'signing_key_1', 's4', 'jwt', 's5'),
    false, 'Unknown tool: x' || substr(:'other', 10)) IS NOT NULL AS logged;
COMMIT;
-- A data exception in a handler: the value it names is not repeated.
SELECT call_tool(:'k', 'create_job', '{"customer": "Dated", "due_date": "2025-99-31"}')->'error' AS refused;

\c - postgres
SELECT key, value FROM mcp_key_usage_logs l, jsonb_each_text(l.tool_arguments)
 WHERE l.key_id = :'k_id' AND l.tool_name = 'fetch_jobs'
   AND key NOT IN ('note', 'first_half', 'second_half', 'short')
   AND l.tool_arguments ? 'pwd'
 ORDER BY key COLLATE "C";
SELECT tool_arguments->>'note' = 'shouting ' || upper(:'other_prefix') || '[redacted]' AS upper_case_key_cut,
       tool_arguments->>'first_half' = left(:'other', 9) || '[redacted]' AS piece_cut_to_prefix,
       tool_arguments->>'short' = left(:'other', 16) AS seven_characters_name_nothing
  FROM mcp_key_usage_logs WHERE key_id = :'k_id' AND tool_name = 'fetch_jobs';
SELECT error_message FROM mcp_key_usage_logs WHERE key_id = :'k_id' AND tool_name = 'create_job';
SELECT count(*) AS rows_holding_a_secret FROM (
    SELECT x::text AS t FROM mcp_key_usage_logs x UNION ALL SELECT x::text FROM activity_log x
) s WHERE t ~ '"s[1-9]"' OR position(upper(:'other') IN t) > 0
       OR position(substr(:'other', 10, 20) IN t) > 0 OR position(substr(:'other', 18, 20) IN t) > 0
       OR position(substr(:'other', 28, 20) IN t) > 0;
-- The refused date stays in the call's arguments, as sent; no message repeats it.
SELECT count(*) AS messages_with_the_value FROM (
    SELECT error_message AS m FROM mcp_key_usage_logs WHERE tenant_id = :t
    UNION ALL SELECT description || (metadata->>'error') FROM activity_log WHERE tenant_id = :t
) s WHERE position('2025-99-31' IN m) > 0;
DROP ROLE regress_red_server;
