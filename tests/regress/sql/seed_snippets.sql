-- The Eryxon Flow MCP Integration Guide's SQL, verbatim except for its placeholders ('your-tenant-id',
-- 'your-user-id', 'your-key-id'), which are real ids here. Key values are random,
-- so the snippets' own output goes to /dev/null and what they did is read back.
SET mcp_auth.bcrypt_cost = 4;
\o /dev/null
SELECT * FROM generate_mcp_key(
p_tenant_id := 'a0000000-0000-0000-0000-00000000000a',
p_name := 'Production Key',
p_description := 'Claude integration for production',
p_environment := 'live',
p_allowed_tools := '["*"]'::jsonb,
p_created_by := 'b0000000-0000-0000-0000-00000000000b'
);
SELECT * FROM generate_mcp_key(
p_tenant_id := 'a0000000-0000-0000-0000-00000000000a',
p_name := 'Read-Only Analytics Key',
p_allowed_tools := '["fetch_jobs", "fetch_parts", "fetch_tasks", "get_dashboard_stats"]'::jsonb
);
\o
SELECT name, description, environment, allowed_tools, rate_limit, enabled, created_by, status
  FROM mcp_keys ORDER BY name;

-- What a generated key looks like, and that only its verifier and digest are kept.
SELECT key_id AS prod_id, api_key AS prod_key, key_prefix AS prod_prefix
  FROM generate_mcp_key(p_tenant_id := 'a0000000-0000-0000-0000-00000000000a', p_name := 'Shape') \gset
SELECT :'prod_key' ~ '^mcp_(live|test)_[0-9A-Za-z]{38}$' AS matches_format,
       length(:'prod_key') AS length,
       :'prod_prefix' = left(:'prod_key', 16) AS prefix_is_first_16;
SELECT key_hash ~ '^\$2b\$04\$' AS bcrypt_verifier,
       lookup_hash = encode(sha256(convert_to(:'prod_key', 'UTF8')), 'hex') AS lookup_is_sha256,
       position(:'prod_key' IN key_hash || lookup_hash || key_prefix) = 0 AS key_not_stored
  FROM mcp_authentication_keys WHERE id = :'prod_id';

-- The default cost is the Integration Guide's factor 10.
RESET mcp_auth.bcrypt_cost;
SELECT key_id AS ten_id FROM generate_mcp_key('a0000000-0000-0000-0000-00000000000a', 'Cost ten') \gset
SELECT key_hash ~ '^\$2b\$10\$' AS cost_10 FROM mcp_authentication_keys WHERE id = :'ten_id';

-- "Update key permissions": the Integration Guide's rate-limit snippet, with the tenant set.
SET mcp_auth.tenant_id = 'a0000000-0000-0000-0000-00000000000a';
UPDATE mcp_authentication_keys
SET rate_limit = 500
WHERE id = :'prod_id'
AND tenant_id = (get_tenant_info()).id;
SELECT rate_limit FROM mcp_authentication_keys WHERE id = :'prod_id';
RESET mcp_auth.tenant_id;
