-- Every key that must not authenticate fails with the same message.
SET mcp_auth.bcrypt_cost = 4;
\set tenant '''c0000000-0000-0000-0000-00000000000c'''
SELECT key_id, api_key FROM generate_mcp_key(:tenant, 'Good') \gset good_
SELECT * FROM validate_mcp_key(:'good_api_key') \gset v_
SELECT :'v_tenant_id' = 'c0000000-0000-0000-0000-00000000000c' AS right_tenant,
       :'v_key_id' = :'good_key_id' AS right_key, :'v_key_name' AS key_name,
       :'v_allowed_tools' AS allowed_tools, :'v_rate_limit' AS rate_limit, :'v_environment' AS environment;

-- unknown (well-formed, valid checksum, never issued)
SELECT * FROM validate_mcp_key('mcp_live_000000000000000000000000000000003teN4T');
-- wrong: one character changed (the checksum catches it before any table is read)
SELECT * FROM validate_mcp_key(overlay(:'good_api_key' PLACING
    CASE WHEN substr(:'good_api_key', 20, 1) = 'a' THEN 'b' ELSE 'a' END FROM 20 FOR 1));
-- malformed
SELECT * FROM validate_mcp_key('mcp_live_short');
SELECT * FROM validate_mcp_key('');
SELECT * FROM validate_mcp_key(NULL);
SELECT * FROM validate_mcp_key(replace(:'good_api_key', 'mcp_live_', 'mcp_prod_'));
-- bad checksum: the random part intact, the last character changed
SELECT * FROM validate_mcp_key(left(:'good_api_key', 46) ||
    CASE WHEN right(:'good_api_key', 1) = 'Z' THEN 'Y' ELSE 'Z' END);

-- disabled
SELECT disable_mcp_key(:'good_key_id') AS disabled;
SELECT * FROM validate_mcp_key(:'good_api_key');
SELECT disable_mcp_key(:'good_key_id') AS disabled_again;
SELECT enable_mcp_key(:'good_key_id') AS enabled;
SELECT count(*) AS validates_again FROM validate_mcp_key(:'good_api_key');
-- disabled by a plain UPDATE, as the admin panel would
UPDATE mcp_authentication_keys SET enabled = false WHERE id = :'good_key_id';
SELECT * FROM validate_mcp_key(:'good_api_key');
UPDATE mcp_authentication_keys SET enabled = true WHERE id = :'good_key_id';

-- expired
UPDATE mcp_authentication_keys SET expires_at = now() - interval '1 second' WHERE id = :'good_key_id';
SELECT * FROM validate_mcp_key(:'good_api_key');
UPDATE mcp_authentication_keys SET expires_at = now() + interval '1 day' WHERE id = :'good_key_id';
SELECT count(*) AS validates_before_expiry FROM validate_mcp_key(:'good_api_key');
-- expiring by the clock: a key that expires in one second
SELECT key_id, api_key FROM generate_mcp_key(:tenant, 'Short-lived',
    p_expires_at := clock_timestamp() + interval '1 second') \gset short_
SELECT count(*) AS fresh FROM validate_mcp_key(:'short_api_key');
SELECT pg_sleep(1.2);
SELECT * FROM validate_mcp_key(:'short_api_key');

-- revoked: for good
SELECT revoke_mcp_key(:'good_key_id') AS revoked;
SELECT * FROM validate_mcp_key(:'good_api_key');
SELECT enable_mcp_key(:'good_key_id');
UPDATE mcp_authentication_keys SET enabled = true WHERE id = :'good_key_id';
SELECT revoke_mcp_key(:'good_key_id') AS revoked_again;
SELECT status FROM mcp_keys WHERE id = :'good_key_id';

-- usage is counted on success only
SELECT key_id, api_key FROM generate_mcp_key(:tenant, 'Counted') \gset cnt_
SELECT usage_count, last_used_at IS NULL AS never_used FROM mcp_keys WHERE id = :'cnt_key_id';
SELECT count(*) FROM validate_mcp_key(:'cnt_api_key');
SELECT count(*) FROM validate_mcp_key(:'cnt_api_key');
SELECT * FROM validate_mcp_key(left(:'cnt_api_key', 46) || CASE WHEN right(:'cnt_api_key', 1) = 'x' THEN 'y' ELSE 'x' END);
SELECT count(*) FROM validate_mcp_key(:'cnt_api_key');
-- (the ledger's writer stores counts shortly after; mcp_ledger_sync waits for it)
SELECT mcp_ledger_sync();
SELECT usage_count, last_used_at IS NOT NULL AS used FROM mcp_keys WHERE id = :'cnt_key_id';
-- a read-only transaction still authenticates, and is counted: the ledger writes
-- the count, not the caller's transaction
BEGIN READ ONLY;
SELECT count(*) AS read_only_validates FROM validate_mcp_key(:'cnt_api_key');
COMMIT;
SELECT mcp_ledger_sync();
SELECT usage_count FROM mcp_keys WHERE id = :'cnt_key_id';
