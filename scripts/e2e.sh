#!/usr/bin/env bash
# End-to-end through `mcp-auth serve` with the official Python MCP SDK client, against
# a fresh private cluster with both extensions installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/bootstrap.sh --python
cargo build -q -p mcp-auth
cluster=e2e
scripts/cluster.sh destroy "$cluster"
scripts/cluster.sh start "$cluster" "${E2E_PORT:-54335}"
trap 'scripts/cluster.sh stop "$cluster"' EXIT
eval "$(scripts/cluster.sh env "$cluster")"
psql=(psql -X -q -v ON_ERROR_STOP=1 -d mcp_e2e)
psql -X -q -d postgres -c "CREATE DATABASE mcp_e2e"
"${psql[@]}" -c "CREATE EXTENSION mcp_mes CASCADE" \
    -c "SELECT mes_seed_demo('e2e00000-0000-4000-8000-000000000001', 12)" \
    -c "CREATE ROLE e2e_mcp_server LOGIN IN ROLE mcp_client" >/dev/null
key() { "${psql[@]}" -At -c "SET mcp_auth.bcrypt_cost = 4" -c "$1"; }
export E2E_FULL_KEY=$(key "SELECT api_key FROM generate_mcp_key('e2e00000-0000-4000-8000-000000000001', 'E2E full')")
export E2E_RO_KEY=$(key "SELECT api_key FROM generate_mcp_key('e2e00000-0000-4000-8000-000000000001', 'E2E read-only',
    p_allowed_tools := '[\"fetch_jobs\", \"fetch_parts\", \"fetch_tasks\", \"get_dashboard_stats\"]')")
export E2E_DATABASE_URL="host=$PGHOST port=$PGPORT user=e2e_mcp_server dbname=mcp_e2e"
export E2E_ADMIN_URL="host=$PGHOST port=$PGPORT user=postgres dbname=mcp_e2e"
export E2E_TENANT=e2e00000-0000-4000-8000-000000000001
export E2E_ADMIN_PSQL="psql -X -h $PGHOST -p $PGPORT -U postgres -d mcp_e2e"
export MCP_AUTH_BIN="$here/target/debug/mcp-auth"
.venv/bin/python tests/e2e/test_stdio.py
