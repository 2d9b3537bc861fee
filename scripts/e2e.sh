#!/usr/bin/env bash
# End-to-end through `mcp-auth serve` with the official Python MCP SDK client, against
# a fresh private cluster with both extensions installed.
# `scripts/e2e.sh PATTERN` runs only the steps whose name matches the shell pattern
# (test_http, 'test_http*', node, inspector, ...).
set -euo pipefail
only=${1:-}
wanted() { [ -z "$only" ] || [[ "$1" == $only ]]; }
status=0
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/bootstrap.sh --python
cargo build -q -p mcp-auth
cluster=${E2E_CLUSTER:-e2e}
pgenv=$(scripts/cluster.sh fresh "$cluster" "${E2E_PORT:-25435}") # fails the script if it fails
eval "$pgenv"
trap 'scripts/cluster.sh stop "$cluster"' EXIT
# TLS on the cluster, so the server's TLS is tested: a throwaway CA, a server
# certificate it signs for the name "localhost" (not for 127.0.0.1), and an unrelated CA.
data="$here/.clusters/$cluster/data"
certs="$here/.clusters/$cluster/certs"
mkdir -p "$certs"
ssl() { openssl "$@" >/dev/null 2>&1; }
ssl req -new -x509 -days 2 -nodes -subj "/CN=mcp-auth e2e CA" -keyout "$certs/ca.key" -out "$certs/ca.crt"
ssl req -new -x509 -days 2 -nodes -subj "/CN=another CA" -keyout "$certs/other.key" -out "$certs/other-ca.crt"
ssl req -new -nodes -subj "/CN=localhost" -keyout "$data/server.key" -out "$certs/server.csr"
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$certs/server.ext"
ssl x509 -req -days 2 -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
    -CAcreateserial -extfile "$certs/server.ext" -out "$data/server.crt"
chown postgres:postgres "$data/server.key" "$data/server.crt"
chmod 600 "$data/server.key"
psql -X -q -d postgres -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
psql=(psql -X -q -v ON_ERROR_STOP=1 -d mcp_e2e)
psql -X -q -d postgres -c "CREATE DATABASE mcp_e2e"
"${psql[@]}" -c "CREATE EXTENSION mcp_mes CASCADE" \
    -c "SELECT mes_seed_demo('e2e00000-0000-4000-8000-000000000001', 12)" \
    -c "CREATE ROLE e2e_mcp_server LOGIN IN ROLE mcp_client" \
    -c "SET mcp_auth.tenant_id = 'e2e00000-0000-4000-8000-000000000001'" \
    -c "SELECT update_mcp_server_config(p_server_name := 'e2e-shop-floor')" >/dev/null
key() { "${psql[@]}" -At -c "SET mcp_auth.bcrypt_cost = 4" -c "$1"; }
export E2E_FULL_KEY=$(key "SELECT api_key FROM generate_mcp_key('e2e00000-0000-4000-8000-000000000001', 'E2E full')")
export E2E_RO_KEY=$(key "SELECT api_key FROM generate_mcp_key('e2e00000-0000-4000-8000-000000000001', 'E2E read-only',
    p_allowed_tools := '[\"fetch_jobs\", \"fetch_parts\", \"fetch_tasks\", \"get_dashboard_stats\"]')")
export E2E_DATABASE_URL="host=$PGHOST port=$PGPORT user=e2e_mcp_server dbname=mcp_e2e"
export E2E_TLS_DATABASE_URL="host=127.0.0.1 port=$PGPORT user=e2e_mcp_server dbname=mcp_e2e sslmode=require"
tcp="port=$PGPORT user=e2e_mcp_server dbname=mcp_e2e"
export E2E_VERIFY_FULL_URL="host=localhost hostaddr=127.0.0.1 $tcp sslmode=verify-full sslrootcert=$certs/ca.crt"
export E2E_VERIFY_CA_IP_URL="host=127.0.0.1 $tcp sslmode=verify-ca sslrootcert=$certs/ca.crt"
export E2E_VERIFY_FULL_IP_URL="host=127.0.0.1 $tcp sslmode=verify-full sslrootcert=$certs/ca.crt"
export E2E_VERIFY_OTHER_CA_URL="host=localhost hostaddr=127.0.0.1 $tcp sslmode=verify-full sslrootcert=$certs/other-ca.crt"
export E2E_ADMIN_URL="host=$PGHOST port=$PGPORT user=postgres dbname=mcp_e2e"
export E2E_TENANT=e2e00000-0000-4000-8000-000000000001
export E2E_PG_LOG="$here/.clusters/$cluster/server.log"
export E2E_ADMIN_PSQL="psql -X -h $PGHOST -p $PGPORT -U postgres -d mcp_e2e"
export MCP_AUTH_BIN="$here/target/debug/mcp-auth"
for step in .venv:test_stdio .venv:test_stdio_hardening .venv-modern:test_stdio_modern \
            .venv:test_http .venv-modern:test_http_modern .venv:test_http_internet .venv:test_http_load \
            .venv:test_http_oauth; do
    # Streamable HTTP (`serve --http`): both SDK eras, raw HTTP, the internet's
    # attacks, then load and isolation.
    # A failed step still lets the others run; the script fails at the end.
    wanted "${step#*:}" && { "${step%%:*}/bin/python" "tests/e2e/${step#*:}.py" || status=1; }
done

# A free loopback port, and an HTTP server on it until the step ends.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_http() { # port [more `serve` arguments]
    local port=$1
    shift
    DATABASE_URL="$E2E_DATABASE_URL" "$MCP_AUTH_BIN" serve --http "127.0.0.1:$port" "$@" 2>/dev/null &
    http_pid=$!
    python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2)
        break
    except OSError:
        time.sleep(0.1)
PY
}

# The official TypeScript SDK and mcp-remote (npm), two more independent clients.
if wanted node; then
    node_dir="$here/tests/e2e/node"
    [ -x "$node_dir/node_modules/.bin/mcp-remote" ] \
        || (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    http_port=$(free_port)
    start_http "$http_port"
    node "$node_dir/clients.mjs" "http://127.0.0.1:$http_port/mcp" || status=1
    kill -TERM "$http_pid"
    wait "$http_pid" || true
fi

# OAuth 2.1 (`--oauth-issuer`) through the TypeScript SDK's OAuth client, mcp-remote
# with the URL only, and the consent page in headless Chromium. Every client comes
# from 127.0.0.1, hence the raised per-address limits.
if wanted oauth_node; then
    node_dir="$here/tests/e2e/node"
    [ -d "$node_dir/node_modules/puppeteer-core" ] \
        || (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    export E2E_ARTIFACTS="$here/tests/e2e/artifacts"
    mkdir -p "$E2E_ARTIFACTS"
    http_port=$(free_port)
    start_http "$http_port" --oauth-issuer "http://127.0.0.1:$http_port" \
        --oauth-clients-per-ip 1000 --oauth-attempts-per-minute 1000
    node "$node_dir/oauth.mjs" "http://127.0.0.1:$http_port/mcp" || status=1
    kill -TERM "$http_pid"
    wait "$http_pid" || true
fi

wanted inspector || exit "$status"
# One call through the MCP Inspector CLI (npm), a third, independent client.
inspector="$here/tests/e2e/inspector"
[ -x "$inspector/node_modules/.bin/mcp-inspector" ] \
    || (cd "$inspector" && npm ci --no-audit --no-fund --loglevel=error)
out=$(cd "$inspector" && MCP_CATALOG_PATH="$here/.clusters/$cluster/inspector-catalog.json" \
    timeout 60 node_modules/.bin/mcp-inspector --cli \
    -e "DATABASE_URL=$E2E_DATABASE_URL" -e "MCP_API_KEY=$E2E_FULL_KEY" \
    --method tools/call --tool-name fetch_jobs --tool-arg limit=2 -- "$MCP_AUTH_BIN" serve 2>&1) || true
if python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); sys.exit(0 if r["structuredContent"]["count"] == 2 and not r.get("isError") else 1)' <<<"$out"; then
    echo "ok - inspector: tools/call fetch_jobs through the MCP Inspector CLI"
else
    echo "not ok - inspector: tools/call fetch_jobs through the MCP Inspector CLI ($out)"
    status=1
fi

# The Inspector CLI again, over Streamable HTTP with the key as a bearer header.
http_port=$(free_port)
start_http "$http_port"
out=$(cd "$inspector" && MCP_CATALOG_PATH="$here/.clusters/$cluster/inspector-catalog.json" \
    timeout 60 node_modules/.bin/mcp-inspector --cli "http://127.0.0.1:$http_port/mcp" --transport http \
    --header "Authorization: Bearer $E2E_FULL_KEY" \
    --method tools/call --tool-name fetch_jobs --tool-arg limit=2 2>&1) || true
kill -TERM "$http_pid"
wait "$http_pid" || true
if python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); sys.exit(0 if r["structuredContent"]["count"] == 2 and not r.get("isError") else 1)' <<<"$out"; then
    echo "ok - inspector: tools/call fetch_jobs over Streamable HTTP with a bearer key"
else
    echo "not ok - inspector: tools/call fetch_jobs over Streamable HTTP with a bearer key ($out)"
    status=1
fi
exit "$status"
