#!/usr/bin/env bash
# `make demo`: a private cluster with mcp_auth, a demo tenant's key, and that key
# validated the way an MCP server would. Leaves the cluster running for you.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cluster=demo
port=${DEMO_PORT:-54329}
tenant=7e1a0000-0000-4000-8000-000000000001
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

bold "1. Private PostgreSQL cluster (.clusters/$cluster, port $port, run as postgres)"
scripts/cluster.sh start "$cluster" "$port"
eval "$(scripts/cluster.sh env "$cluster")"
psql=(psql -X -q -v ON_ERROR_STOP=1 -d mcp_demo)
psql -X -q -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'mcp_demo'" | grep -q 1 \
    || psql -X -q -d postgres -c "CREATE DATABASE mcp_demo"
"${psql[@]}" -c "CREATE EXTENSION IF NOT EXISTS mcp_auth"
"${psql[@]}" -c "\dx mcp_auth"

bold "2. A key for tenant $tenant (shown once; only its bcrypt hash and SHA-256 are stored)"
name="Demo Claude Desktop $(date +%Y%m%d-%H%M%S)"
read -r key_id api_key key_prefix < <("${psql[@]}" -At -F ' ' -c "
    SELECT key_id, api_key, key_prefix FROM generate_mcp_key(
        p_tenant_id := '$tenant',
        p_name := '$name',
        p_description := 'made by make demo',
        p_environment := 'live',
        p_allowed_tools := '[\"*\"]'::jsonb)")
printf '  key id:     %s\n  key prefix: %s (safe to show and log)\n  API key:    %s\n' \
    "$key_id" "$key_prefix" "$api_key"

bold "3. Validating it, as the MCP server does on every call"
"${psql[@]}" -c "\timing on" -c "BEGIN" \
    -c "SELECT tenant_id, key_name, allowed_tools, rate_limit, environment FROM validate_mcp_key('$api_key')" \
    -c "SELECT id AS tenant, key_name, source FROM get_tenant_info()" \
    -c "SELECT check_mcp_tool_permission('$key_id', 'fetch_jobs') AS may_call_fetch_jobs" \
    -c "COMMIT" \
    -c "SELECT count(*) AS validated_again_from_cache FROM validate_mcp_key('$api_key')"

bold "4. A wrong key gets the one answer every bad key gets"
"${psql[@]}" -c "SELECT * FROM validate_mcp_key('${api_key%?????}XXXXX')" 2>&1 | sed 's/^/  /' || true

bold "5. The tenant's keys as its admin sees them (RLS; no hash, no lookup value)"
"${psql[@]}" -c "SET ROLE mcp_admin" -c "SET mcp_auth.tenant_id = '$tenant'" \
    -c "SELECT name, key_prefix, environment, allowed_tools, rate_limit, usage_count, status FROM mcp_keys ORDER BY created_at DESC LIMIT 3"

bold "Next"
cat <<TXT
  The cluster keeps running. Connect with:
      psql "host=$PGHOST port=$PGPORT user=postgres dbname=mcp_demo"
  Stop it with:  scripts/cluster.sh stop $cluster
  Run every test: make test
TXT
