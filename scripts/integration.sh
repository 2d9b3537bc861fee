#!/usr/bin/env bash
# Client-side tests over many real connections (tests/integration), against a fresh
# private cluster with the installed extension.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cluster=integration
pgenv=$(scripts/cluster.sh fresh "$cluster" "${INTEGRATION_PORT:-25434}") # fails the script if it fails
eval "$pgenv"
trap 'scripts/cluster.sh stop "$cluster"' EXIT
psql -X -q -d postgres -c "CREATE DATABASE mcp_it"
psql -X -q -d mcp_it -c "CREATE EXTENSION mcp_auth" -c "CREATE EXTENSION mcp_mes"
export MCP_AUTH_TEST_URL="host=$PGHOST port=$PGPORT user=postgres dbname=mcp_it"
cargo test -p mcp_auth_integration -- --test-threads=8 "$@"
