#!/usr/bin/env bash
# `make bench`: runs the benchmarks against a fresh private cluster and writes
# bench/RESULTS.md. The extension must be installed (make install does it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cluster=bench
cargo build --release -q -p mcp_auth_bench -p mcp-auth
pgenv=$(scripts/cluster.sh fresh "$cluster" "${BENCH_PORT:-25433}") # fails the script if it fails
eval "$pgenv"
trap 'scripts/cluster.sh destroy "$cluster"' EXIT
# Checkpoints far apart: a checkpoint inside a 15-second run (and the full-page
# writes after it) would weigh on whichever side it happened to land in.
psql -X -q -d postgres -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
    -c "ALTER SYSTEM SET checkpoint_timeout = '30min'" -c "SELECT pg_reload_conf()" >/dev/null
psql -X -q -d postgres -c "CREATE DATABASE mcp_bench"
export PGDATABASE=mcp_bench
export BENCH_WHEN="$(date -u '+%Y-%m-%d %H:%M UTC')"
export BENCH_MACHINE="$(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), $("$PGBIN/postgres" --version)"
target/release/mcp-auth-bench "host=$PGHOST port=$PGPORT user=postgres dbname=mcp_bench" bench/RESULTS.md
