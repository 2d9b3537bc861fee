-- OAuth (mcp-auth serve --oauth-issuer) as roles see it: an mcp_client login grants
-- no more than a key it holds, reads no token or client; an admin sees its tenant's
-- tokens (never digests) and revokes only them; a login with no grants calls nothing.
SET mcp_auth.bcrypt_cost = 4;
\set ta '''0a0a0a0a-0000-4000-8000-00000000000a'''
\set tb '''0b0b0b0b-0000-4000-8000-00000000000b'''
CREATE ROLE regress_oauth_server LOGIN IN ROLE mcp_client;
CREATE ROLE regress_oauth_admin_b LOGIN IN ROLE mcp_admin;
CREATE ROLE regress_oauth_nobody LOGIN;
SELECT grant_mcp_tenant_admin('regress_oauth_admin_b', :tb) AS bound;
CREATE FUNCTION regress_oauth_echo(p_args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"echo": 1}'::jsonb $$;
CREATE FUNCTION regress_oauth_other(p_args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"other": 1}'::jsonb $$;
SELECT register_mcp_tool('regress_oauth_echo', 'test', 'Echo', '{"type": "object"}', 'regress_oauth_echo(jsonb)'::regprocedure);
SELECT register_mcp_tool('regress_oauth_other', 'test', 'Other', '{"type": "object"}', 'regress_oauth_other(jsonb)'::regprocedure);
SELECT api_key AS key_a, key_id AS id_a FROM generate_mcp_key(:ta, 'OAuth A',
       p_allowed_tools := '["regress_oauth_*"]') \gset
SELECT api_key AS key_b, key_id AS id_b FROM generate_mcp_key(:tb, 'OAuth B',
       p_allowed_tools := '["regress_oauth_echo"]') \gset
-- The RFC 7636 example pair.
\set verifier '''dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'''
\set challenge '''E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'''
\set resource '''https://mcp.example.com/mcp'''

\c - regress_oauth_server
SET client_min_messages = warning;
-- No table of OAuth's.
SELECT * FROM mcp_oauth_tokens;
SELECT * FROM mcp_oauth_clients;
SELECT mcp_oauth_register_client('Regress', ARRAY['https://app.example/cb']) ->> 'client_id' AS cid \gset
SELECT mcp_oauth_register_client('Bad', ARRAY['http://app.example/cb']) ->> 'error' AS http_off_loopback;
SELECT mcp_oauth_register_client('', ARRAY['https://app.example/cb']) ->> 'error_description' AS no_name;
-- What key B may grant: its tenant and its one tool.
SELECT c ->> 'tenant_id' AS tenant, c -> 'tools' AS tools FROM mcp_oauth_consent(:'key_b') c;
SELECT mcp_oauth_consent('mcp_live_notakey') AS refused;
-- Key B cannot grant a tool it may not call; redirect URIs match exactly; S256 only.
SELECT mcp_oauth_authorize(:'key_b', :'cid', 'https://app.example/cb', :challenge, :resource,
       ARRAY['regress_oauth_other']) ->> 'error' AS beyond_key;
SELECT mcp_oauth_authorize(:'key_b', :'cid', 'https://app.example/cb/', :challenge, :resource) ->> 'error' AS inexact_redirect;
SELECT mcp_oauth_authorize(:'key_b', :'cid', 'https://app.example/cb', 'plain-challenge', :resource) ->> 'error' AS not_s256;
-- Key A grants one of its two tools.
SELECT mcp_oauth_authorize(:'key_a', :'cid', 'https://app.example/cb', :challenge, :resource,
       ARRAY['regress_oauth_echo']) ->> 'code' AS code \gset
SELECT mcp_oauth_token('authorization_code', :'code', :'cid', :verifier, 'https://app.example/cb', :resource) AS t \gset
SELECT (:'t'::jsonb) ->> 'token_type' AS token_type, (:'t'::jsonb) ->> 'expires_in' AS expires_in;
SELECT (:'t'::jsonb) ->> 'access_token' AS at, (:'t'::jsonb) ->> 'refresh_token' AS rt \gset
-- Not this session's audience: refused like a wrong key.
SELECT call_tool(:'at', 'regress_oauth_echo') -> 'error' ->> 'type' AS without_resource;
SET mcp_auth.oauth_resource = 'https://other.example/mcp';
SELECT call_tool(:'at', 'regress_oauth_echo') -> 'error' ->> 'type' AS other_resource;
SET mcp_auth.oauth_resource = 'https://mcp.example.com/mcp';
SELECT call_tool(:'at', 'regress_oauth_echo') -> 'result' AS chosen_tool;
SELECT call_tool(:'at', 'regress_oauth_other') -> 'error' ->> 'type' AS other_tool;
SELECT jsonb_path_query_array(list_tools(:'at'), '$.result.tools[*].name') AS listed;
SELECT (get_tenant_info()).id = :ta AS tenant_is_the_keys
  FROM validate_mcp_key(:'at');
-- A refresh token is not an access token, and an access token refreshes nothing.
SELECT call_tool(:'rt', 'regress_oauth_echo') -> 'error' ->> 'type' AS refresh_as_access;
SELECT mcp_oauth_token('refresh_token', :'at', :'cid') ->> 'error' AS access_as_refresh;
-- Another client cannot use or revoke it.
SELECT mcp_oauth_token('refresh_token', :'rt', 'mcp_client_other') ->> 'error' AS other_client;
SELECT mcp_oauth_revoke(:'rt', 'mcp_client_other') AS revoked_by_other;

\c - regress_oauth_admin_b
SET mcp_auth.tenant_id = '0b0b0b0b-0000-4000-8000-00000000000b';
-- Its tenant only; no digest, no challenge.
SELECT count(*) AS tokens_seen FROM mcp_oauth_tokens;
SELECT digest FROM mcp_oauth_tokens;
SELECT name, oauth_clients FROM mcp_keys ORDER BY name;
SELECT revoke_mcp_oauth_client(:'cid') AS revoked_in_b;

\c - regress_oauth_nobody
SELECT mcp_oauth_consent(:'key_a');
SELECT mcp_oauth_token('refresh_token', :'rt', :'cid');
SELECT revoke_mcp_oauth_client(:'cid');

\c - postgres
SET mcp_auth.oauth_resource = 'https://mcp.example.com/mcp';
SELECT call_tool(:'at', 'regress_oauth_echo') -> 'result' AS still_live;
SET mcp_auth.tenant_id = '0a0a0a0a-0000-4000-8000-00000000000a';
SELECT name, array_length(oauth_clients, 1) AS clients FROM mcp_keys WHERE tenant_id = :ta;
SELECT revoke_mcp_oauth_client(:'cid') AS revoked;
SELECT call_tool(:'at', 'regress_oauth_echo') -> 'error' ->> 'type' AS after_revoke;
SELECT mcp_oauth_token('refresh_token', :'rt', :'cid') ->> 'error' AS refresh_after_revoke;
-- Only digests: no secret in any column.
SELECT count(*) AS secrets_stored FROM mcp_oauth_tokens t
 WHERE to_jsonb(t)::text ~ 'mcp_(at|rt|ac)_';
RESET mcp_auth.tenant_id;
DELETE FROM mcp_tools WHERE name LIKE 'regress_oauth_%';
DROP FUNCTION regress_oauth_echo(jsonb), regress_oauth_other(jsonb);
DROP ROLE regress_oauth_nobody;
