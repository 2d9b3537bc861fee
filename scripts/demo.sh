#!/usr/bin/env bash
# `make demo`: a private cluster with mcp_auth and mcp_mes, a demo tenant with shop-floor
# data, a full key and the Eryxon Flow MCP Integration Guide's read-only key, and tool calls made the way an MCP
# server makes them (one call_tool per request). Leaves the cluster running for you.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cluster=demo
port=${DEMO_PORT:-25429}
tenant=7e1a0000-0000-4000-8000-000000000001
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

bold "1. Private PostgreSQL cluster (.clusters/$cluster, port $port, run as postgres)"
scripts/cluster.sh start "$cluster" "$port"
eval "$(scripts/cluster.sh env "$cluster")"
psql=(psql -X -q -v ON_ERROR_STOP=1 -d mcp_demo)
# A fresh demo database each run, so it always shows the extensions as installed now.
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS mcp_demo" -c "CREATE DATABASE mcp_demo"
"${psql[@]}" -c "CREATE EXTENSION mcp_auth" -c "CREATE EXTENSION mcp_mes"
"${psql[@]}" -c "\dx mcp_*"
"${psql[@]}" -c "SELECT mes_seed_demo('$tenant', 24) AS demo_data"

bold "2. Keys for tenant $tenant (shown once; only a bcrypt hash and a SHA-256 are stored)"
stamp=$(date +%Y%m%d-%H%M%S)
read -r key_id api_key key_prefix < <("${psql[@]}" -At -F ' ' -c "
    SELECT key_id, api_key, key_prefix FROM generate_mcp_key(
        p_tenant_id := '$tenant',
        p_name := 'Demo Claude Desktop $stamp',
        p_description := 'made by make demo',
        p_environment := 'live',
        p_allowed_tools := '[\"*\"]'::jsonb)")
read -r ro_key < <("${psql[@]}" -At -c "
    SELECT api_key FROM generate_mcp_key(
        p_tenant_id := '$tenant',
        p_name := 'Read-Only Analytics Key $stamp',
        p_allowed_tools := '[\"fetch_jobs\", \"fetch_parts\", \"fetch_tasks\", \"get_dashboard_stats\"]'::jsonb)")
printf '  full key:      %s  (prefix %s, safe to log)\n  read-only key: %s\n' "$api_key" "$key_prefix" "$ro_key"

bold "3. Validating the full key, as every call does first"
"${psql[@]}" -c "BEGIN" \
    -c "SELECT tenant_id, key_name, allowed_tools, rate_limit, environment FROM validate_mcp_key('$api_key')" \
    -c "SELECT id AS tenant, key_name, source FROM get_tenant_info()" \
    -c "COMMIT"

bold "4. What each key may call (list_tools)"
"${psql[@]}" -c "
    SELECT 'full' AS key, jsonb_array_length(list_tools('$api_key')->'result'->'tools') AS tools
    UNION ALL
    SELECT 'read-only', jsonb_array_length(list_tools('$ro_key')->'result'->'tools')"

bold "5. Tool calls, one round trip each: auth, permission, rate limit, arguments, tool, audit"
"${psql[@]}" -c "\timing on" -c "
    SELECT j->>'job_number' AS job, j->>'customer' AS customer, j->>'status' AS status, j->>'due_date' AS due
      FROM jsonb_array_elements(
             call_tool('$api_key', 'fetch_jobs', '{\"status\": \"in_progress\", \"limit\": 5}')->'result'->'jobs') j"
"${psql[@]}" -c "SELECT call_tool('$api_key', 'get_dashboard_stats', '{}')->'result' AS dashboard"
echo "  the read-only key asks for create_job:"
"${psql[@]}" -At -c "SELECT call_tool('$ro_key', 'create_job', '{\"customer\": \"Globex\"}')" | sed 's/^/    /'
echo "  a bad argument:"
"${psql[@]}" -At -c "SELECT call_tool('$api_key', 'fetch_jobs', '{\"status\": \"bogus\"}')" | sed 's/^/    /'
echo "  completing a job that has not started:"
"${psql[@]}" -At -c "
    SELECT call_tool('$api_key', 'complete_job', jsonb_build_object('job_id', id))
      FROM jobs WHERE tenant_id = '$tenant' AND status = 'not_started' LIMIT 1" | sed 's/^/    /'
echo "  a wrong key:"
"${psql[@]}" -At -c "SELECT call_tool('${api_key%?????}XXXXX', 'fetch_jobs', '{}')" | sed 's/^/    /'

bold "6. A real MCP session: the Python MCP SDK talks to mcp-auth serve over stdio"
scripts/bootstrap.sh --python >/dev/null
cargo build -q --release -p mcp-auth
"${psql[@]}" -c "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_mcp_server') THEN
        CREATE ROLE demo_mcp_server LOGIN IN ROLE mcp_client;
    END IF; END \$\$"
database_url="host=$PGHOST port=$PGPORT user=demo_mcp_server dbname=mcp_demo"
MCP_AUTH_BIN="$here/target/release/mcp-auth" DEMO_DATABASE_URL="$database_url" \
    DEMO_FULL_KEY="$api_key" DEMO_RO_KEY="$ro_key" .venv/bin/python scripts/demo_session.py

bold "7. The same over Streamable HTTP: one server for every tenant, the key as a bearer header"
http_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL="$database_url" target/release/mcp-auth serve --http "127.0.0.1:$http_port" 2>/dev/null &
http_pid=$!
for _ in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$http_port/healthz', timeout=1)" \
        2>/dev/null && break
    sleep 0.1
done
echo "  GET /healthz: $(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$http_port/healthz').read().decode())")"
MCP_AUTH_BIN="$here/target/release/mcp-auth" DEMO_DATABASE_URL="$database_url" DEMO_FULL_KEY="$api_key" \
    DEMO_RO_KEY="$ro_key" DEMO_HTTP_URL="http://127.0.0.1:$http_port/mcp" .venv/bin/python scripts/demo_session.py
kill -TERM "$http_pid"
wait "$http_pid" || true

bold "8. The audit trail the admin panel shows (activity_log) and the key's statistics"
# As the shop's own admin role: bound to its tenant by the superuser, it needs no setting.
"${psql[@]}" -q -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_shop_admin')
                   THEN CREATE ROLE demo_shop_admin NOLOGIN IN ROLE mcp_admin; END IF; END \$\$" \
    -c "SELECT grant_mcp_tenant_admin('demo_shop_admin', '$tenant')" >/dev/null
"${psql[@]}" -c "SET ROLE demo_shop_admin" \
    -c "SELECT created_at::time(0) AS at, action, entity_name AS tool, description
          FROM activity_log ORDER BY created_at DESC LIMIT 6" \
    -c "SELECT total_requests, successful_requests, failed_requests, avg_response_time_ms,
               most_used_tools FROM get_mcp_key_stats('$key_id')"

bold "Claude Desktop: paste into claude_desktop_config.json"
cat <<JSON
{
  "mcpServers": {
    "eryxon-flow": {
      "command": "$here/target/release/mcp-auth",
      "args": ["serve"],
      "env": {
        "DATABASE_URL": "$database_url",
        "MCP_API_KEY": "$api_key"
      }
    }
  }
}
JSON

bold "Or a remote server (mcp-auth serve --http, run by the operator): the host needs a URL and a header"
cat <<TXT
  URL:     http://127.0.0.1:<port>/mcp   (https://... with --tls-cert/--tls-key off loopback)
  Header:  Authorization: Bearer $api_key
  Start:   DATABASE_URL="$database_url" $here/target/release/mcp-auth serve --http 127.0.0.1:8080
TXT

bold "Next"
cat <<TXT
  The cluster keeps running. Connect with:
      psql "host=$PGHOST port=$PGPORT user=postgres dbname=mcp_demo"
  and try, for example:
      SELECT call_tool('$api_key', 'get_qrm_data', '{}');
  Stop it with:  scripts/cluster.sh stop $cluster
  Run every test: make test
TXT
