-- Parameter checks, rotation with a grace period, and the other lifecycle calls.
SET mcp_auth.bcrypt_cost = 4;
\set tenant '''d0000000-0000-0000-0000-00000000000d'''

-- Each bad input names the parameter and the rule; nothing is written.
SELECT * FROM generate_mcp_key(:tenant, 'Bad env', p_environment := 'prod');
SELECT * FROM generate_mcp_key(:tenant, '   ');
SELECT * FROM generate_mcp_key(:tenant, NULL);
SELECT * FROM generate_mcp_key(NULL, 'No tenant');
SELECT * FROM generate_mcp_key(:tenant, repeat('n', 201));
SELECT * FROM generate_mcp_key(:tenant, 'Bad tools', p_allowed_tools := '"*"');
SELECT * FROM generate_mcp_key(:tenant, 'Bad tools', p_allowed_tools := '[]');
SELECT * FROM generate_mcp_key(:tenant, 'Bad tools', p_allowed_tools := '["fetch_jobs", 7]');
SELECT * FROM generate_mcp_key(:tenant, 'Bad tools', p_allowed_tools := '["fe*tch"]');
SELECT * FROM generate_mcp_key(:tenant, 'Bad tools', p_allowed_tools := '["drop table"]');
SELECT * FROM generate_mcp_key(:tenant, 'Bad rate', p_rate_limit := 0);
SELECT * FROM generate_mcp_key(:tenant, 'Bad rate', p_rate_limit := -5);
SELECT * FROM generate_mcp_key(:tenant, 'Past', p_expires_at := now() - interval '1 minute');
SELECT count(*) AS nothing_written FROM mcp_authentication_keys WHERE tenant_id = :tenant;

-- Names are unique among a tenant's current keys; other tenants may reuse them.
SELECT key_id, api_key FROM generate_mcp_key(:tenant, 'Claude', p_allowed_tools := '["fetch_*"]',
    p_rate_limit := 42, p_description := 'desk') \gset old_
SELECT * FROM generate_mcp_key(:tenant, 'Claude');
SELECT count(*) AS other_tenant_same_name
  FROM generate_mcp_key('e0000000-0000-0000-0000-00000000000e', 'Claude');

-- Rotation with a grace period: both keys work until it ends, then only the new one.
SELECT key_id, api_key, key_prefix FROM rotate_mcp_key(:'old_key_id', interval '2 seconds') \gset new_
SELECT :'new_api_key' <> :'old_api_key' AS new_value, :'new_key_id' <> :'old_key_id' AS new_row;
SELECT name, description, allowed_tools, rate_limit, rotated_from = :'old_key_id' AS linked
  FROM mcp_keys WHERE id = :'new_key_id';
SELECT replaced_by = :'new_key_id' AS replaced, expires_at > now() AS in_grace, status
  FROM mcp_keys WHERE id = :'old_key_id';
SELECT key_name FROM validate_mcp_key(:'old_api_key');
SELECT key_name FROM validate_mcp_key(:'new_api_key');
SELECT * FROM rotate_mcp_key(:'old_key_id');
SELECT pg_sleep(2.2);
SELECT * FROM validate_mcp_key(:'old_api_key');
SELECT key_name FROM validate_mcp_key(:'new_api_key');
SELECT status FROM mcp_keys WHERE id = :'old_key_id';

-- Without a grace period the old value stops at once.
SELECT key_id, api_key FROM rotate_mcp_key(:'new_key_id') \gset third_
SELECT * FROM validate_mcp_key(:'new_api_key');
SELECT key_name FROM validate_mcp_key(:'third_api_key');
SELECT * FROM rotate_mcp_key(:'third_key_id', interval '-1 minute');
SELECT * FROM rotate_mcp_key(NULL);
SELECT * FROM rotate_mcp_key(gen_random_uuid());

-- Revoked keys cannot be rotated or enabled; unknown ids are reported.
SELECT revoke_mcp_key(:'third_key_id');
SELECT * FROM rotate_mcp_key(:'third_key_id');
SELECT enable_mcp_key(:'third_key_id');
SELECT disable_mcp_key(gen_random_uuid());
-- A revoked key frees its name.
SELECT count(*) AS name_reused FROM generate_mcp_key(:tenant, 'Claude');

-- Direct updates follow the same rules.
\set VERBOSITY terse
UPDATE mcp_authentication_keys SET allowed_tools = '["ok", "not ok"]' WHERE tenant_id = :tenant;
UPDATE mcp_authentication_keys SET rate_limit = 0 WHERE tenant_id = :tenant;
UPDATE mcp_authentication_keys SET environment = 'prod' WHERE tenant_id = :tenant;
\set VERBOSITY default
