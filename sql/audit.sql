-- mcp_auth: the audit trail, per-key statistics and the rate limiter's window.
-- Every row carries tenant_id (RLS, and distribution by tenant on Citus).

-- The two logs are partitioned by day (UTC), so that retention drops whole days
-- instead of deleting rows (see purge_mcp_usage_logs). maintain_mcp_log_partitions
-- creates the days ahead (the notifier worker calls it while calls come in); a row
-- for a day without a partition lands in the default partition, which that function
-- splits into days later. Day partitions are made at run time, never by this script,
-- so they are ordinary tables that pg_dump dumps with their rows. Their indexes are
-- their own (made with them), not partitions of indexes on the parent: pg_restore
-- attaches a dumped partition to a parent that CREATE EXTENSION already made, and
-- would find its indexes there twice. (Neither log has a primary key: nothing reads
-- a row by id, and a log keeps its rows whatever their ids.)

-- One row per logged MCP request; append-only. Arguments are redacted before insert.
CREATE TABLE mcp_key_usage_logs (
    id               uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    tenant_id        uuid        NOT NULL,
    key_id           uuid,
    tool_name        text        NOT NULL,
    tool_arguments   jsonb,
    success          boolean     NOT NULL,
    error_message    text,
    response_time_ms integer     CHECK (response_time_ms >= 0),
    ip_address       inet,
    user_agent       text,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- The calling transaction, for a call whose tool wrote in it (NULL for a call
    -- that wrote nothing): pg_xact_status(xact_id) says whether its effects
    -- committed. The row itself is the ledger's, whatever that transaction did.
    xact_id          xid8,
    -- The tenant's hash chain (sql/audit_chain.sql, crates/core/src/audit_chain.rs):
    -- the row's place in it, the hash of the row before and its own. NULL for rows
    -- written before 2.4.0, which are outside the chain.
    seq              bigint,
    prev_hash        bytea,
    hash             bytea
) PARTITION BY RANGE (created_at);
CREATE TABLE mcp_key_usage_logs_default PARTITION OF mcp_key_usage_logs DEFAULT;
COMMENT ON TABLE mcp_key_usage_logs IS
    'mcp_auth: audit trail of MCP requests (arguments redacted); purge with purge_mcp_usage_logs()';
-- The default partition's indexes; maintain_mcp_log_partitions makes the same on each day.
CREATE INDEX mcp_usage_logs_key_time_idx ON mcp_key_usage_logs_default (key_id, created_at);
CREATE INDEX mcp_usage_logs_tenant_time_idx ON mcp_key_usage_logs_default (tenant_id, created_at);
-- Its created_at index finds past days that landed in the default partition.
CREATE INDEX mcp_usage_logs_default_time_idx ON mcp_key_usage_logs_default (created_at);

-- The unified audit trail the admin panel shows (user actions, API calls, MCP).
CREATE TABLE activity_log (
    id          uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    tenant_id   uuid        NOT NULL,
    user_id     uuid,
    user_name   text,
    action      text        NOT NULL,
    entity_type text        NOT NULL,
    entity_id   text,
    entity_name text,
    description text,
    metadata    jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- The tenant's activity chain (sql/audit_chain.sql), on the rows the ledger
    -- writes for MCP calls; NULL on the application's own rows and on rows from
    -- before 2.4.0, which are outside it.
    seq         bigint,
    prev_hash   bytea,
    hash        bytea
) PARTITION BY RANGE (created_at);
CREATE TABLE activity_log_default PARTITION OF activity_log DEFAULT;
COMMENT ON TABLE activity_log IS 'Unified audit trail; MCP requests appear as mcp_execute / mcp_error on entity mcp_tool';
CREATE INDEX activity_log_tenant_time_idx ON activity_log_default (tenant_id, created_at DESC);
CREATE INDEX activity_log_tenant_action_idx ON activity_log_default (tenant_id, action, created_at DESC);
CREATE INDEX activity_log_default_time_idx ON activity_log_default (created_at);

-- Statistics without scanning the log: all-time totals per key and tool, and
-- per-minute counts for the last 24 hours. Like the usage counters, one row per
-- backend slot, so concurrent requests of one key never wait on one row.
CREATE TABLE mcp_key_usage_totals (
    key_id            uuid        NOT NULL,
    tool_name         text        NOT NULL,
    slot              integer     NOT NULL,
    tenant_id         uuid        NOT NULL,
    requests          bigint      NOT NULL DEFAULT 0,
    failures          bigint      NOT NULL DEFAULT 0,
    response_ms_sum   bigint      NOT NULL DEFAULT 0,
    response_ms_count bigint      NOT NULL DEFAULT 0,
    last_used_at      timestamptz,
    PRIMARY KEY (key_id, tool_name, slot, tenant_id)
);
CREATE TABLE mcp_key_usage_minutes (
    key_id    uuid        NOT NULL,
    minute    timestamptz NOT NULL,
    slot      integer     NOT NULL,
    tenant_id uuid        NOT NULL,
    requests  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, minute, slot, tenant_id)
);
COMMENT ON TABLE mcp_key_usage_totals IS 'mcp_auth: all-time request totals per key and tool (sum over slots)';
COMMENT ON TABLE mcp_key_usage_minutes IS 'mcp_auth: requests per key and minute, kept for 25 hours';

-- The rate limiter's durable charges: one row per accepted charge, written by the
-- ledger's writer before the call that made it returns. The windows themselves
-- live in shared memory (src/rate_limit/window.rs); after a restart a key's window
-- is loaded from its rows of the last 60 seconds. The writer deletes older rows.
CREATE TABLE mcp_rate_limit_charges (
    tenant_id uuid        NOT NULL,
    key_id    uuid        NOT NULL,
    at        timestamptz NOT NULL,
    cost      integer     NOT NULL CHECK (cost > 0)
);
CREATE INDEX mcp_rate_limit_charges_key_at_idx ON mcp_rate_limit_charges (key_id, at);
CREATE INDEX mcp_rate_limit_charges_at_idx ON mcp_rate_limit_charges (at);
COMMENT ON TABLE mcp_rate_limit_charges IS
    'mcp_auth: rate-limit charges of the last minutes, durable (the windows are in shared memory)';

-- Notifications of logged calls waiting for the notifier worker (audit/notifier.rs),
-- which sends them as NOTIFY mcp_activity and deletes them. Queued here instead of
-- notified in the caller's transaction: PostgreSQL serialises the commits of
-- notifying transactions. Unlogged and not dumped, like PostgreSQL's own
-- notification queue, which does not survive a crash either.
CREATE UNLOGGED TABLE mcp_activity_outbox (
    -- The worker reads from the oldest transaction that may still be running (an
    -- index range), not over the dead rows of everything it already sent.
    xid       xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    queued_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    tenant_id uuid        NOT NULL,
    payload   text        NOT NULL
);
CREATE INDEX mcp_activity_outbox_xid_idx ON mcp_activity_outbox (xid);
COMMENT ON TABLE mcp_activity_outbox IS
    'mcp_auth: mcp_activity notifications not yet sent by the notifier worker';

-- The parents hold no rows; the default partitions' rows are dumped, and the day
-- partitions are not members of the extension: pg_dump dumps them whole.
SELECT pg_catalog.pg_extension_config_dump('mcp_key_usage_logs_default', '');
SELECT pg_catalog.pg_extension_config_dump('activity_log_default', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_key_usage_totals', '');
SELECT pg_catalog.pg_extension_config_dump('mcp_key_usage_minutes', '');
