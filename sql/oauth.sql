-- mcp_auth: OAuth 2.1 for `mcp-auth serve --http --oauth-issuer` (docs/oauth.md).
-- A user consents with their MCP key; the client gets tokens bound to that key, the
-- client, the server's resource URL and the tools chosen. Only SHA-256 digests of
-- codes and tokens are stored; the extension's owner alone writes these tables,
-- through the functions of src/oauth.

-- The clients the authorization server knows: registered (RFC 7591; client_id made
-- here) or described by a Client ID Metadata Document (client_id is its https URL,
-- fetched by the server). Not tenant data: a client serves any tenant's users.
CREATE TABLE mcp_oauth_clients (
    client_id       text        PRIMARY KEY,
    client_name     text        NOT NULL,
    redirect_uris   text[]      NOT NULL,
    -- 'registered' (dynamic registration) or 'metadata' (metadata document).
    kind            text        NOT NULL CHECK (kind IN ('registered', 'metadata')),
    -- Where a registration came from: registrations are capped per address.
    registered_from inet,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- When a metadata document was last read.
    fetched_at      timestamptz,
    CONSTRAINT mcp_oauth_clients_name CHECK (pg_catalog.length(client_name) BETWEEN 1 AND 200),
    CONSTRAINT mcp_oauth_clients_redirects CHECK (
        pg_catalog.cardinality(redirect_uris) BETWEEN 1 AND 10)
);
CREATE INDEX mcp_oauth_clients_from_idx ON mcp_oauth_clients (registered_from, created_at);
COMMENT ON TABLE mcp_oauth_clients IS
    'mcp_auth: OAuth clients (registered, or by metadata document); see revoke_mcp_oauth_client()';

-- Codes, access and refresh tokens, by digest. A family is one consent: its code and
-- every token that came from it, revoked together when a used code or refresh token
-- comes back (a sign that one was stolen).
CREATE TABLE mcp_oauth_tokens (
    digest         text        NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    kind           text        NOT NULL CHECK (kind IN ('code', 'access', 'refresh')),
    family         uuid        NOT NULL,
    tenant_id      uuid        NOT NULL,
    key_id         uuid        NOT NULL,
    client_id      text        NOT NULL,
    -- The audience (RFC 8707): the MCP endpoint's URL.
    resource       text        NOT NULL,
    -- The tools chosen at consent; NULL: every tool the key may call.
    tools          text[],
    -- A code's redirect_uri and PKCE challenge (S256).
    redirect_uri   text,
    code_challenge text,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at     timestamptz NOT NULL,
    -- A code or refresh token is used once.
    used_at        timestamptz,
    revoked_at     timestamptz,
    -- Found by digest alone (the leading column); tenant_id in the key, as every
    -- key of a tenant table has it (Citus's rule for distributed tables).
    PRIMARY KEY (digest, tenant_id)
);
CREATE INDEX mcp_oauth_tokens_family_idx ON mcp_oauth_tokens (family);
-- A key's live tokens (mcp_keys.oauth_clients); a client's, live or not (revocation,
-- and whether an unused registration can be forgotten).
CREATE INDEX mcp_oauth_tokens_key_idx ON mcp_oauth_tokens (key_id) WHERE revoked_at IS NULL;
CREATE INDEX mcp_oauth_tokens_client_idx ON mcp_oauth_tokens (client_id);
-- Expired rows are deleted as new ones are made.
CREATE INDEX mcp_oauth_tokens_expiry_idx ON mcp_oauth_tokens (expires_at);
COMMENT ON TABLE mcp_oauth_tokens IS
    'mcp_auth: OAuth codes and tokens (SHA-256 digests only), bound to a key, a client, a resource and tools';

SELECT pg_catalog.pg_extension_config_dump('mcp_oauth_clients', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_oauth_tokens', '');
