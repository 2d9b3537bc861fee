#!/usr/bin/env bash
# SQL tests: pg_regress (tests/regress, then mcp_mes's extensions/mcp_mes/test) and
# pg_isolation_regress (tests/isolation)
# against a fresh private cluster, with the extension already installed (make install).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")/../..
cluster=${REGRESS_CLUSTER:-regress}

pgenv=$(scripts/cluster.sh fresh "$cluster" "${REGRESS_PORT:-25431}") # fails the script if it fails
eval "$pgenv"
trap 'scripts/cluster.sh stop "$cluster"' EXIT
common=(--host="$PGHOST" --port="$PGPORT" --user=postgres --bindir="$PGBIN")

status=0
rm -rf tests/regress/results
"$pgxs/src/test/regress/pg_regress" "${common[@]}" --dbname=mcp_regress \
    --inputdir=tests/regress --outputdir=tests/regress \
    --schedule=tests/regress/schedule || status=1
# mcp_mes's own tests (extensions/mcp_mes/test), through its PGXS Makefile.
rm -rf extensions/mcp_mes/test/results
PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres \
    make --no-print-directory -C extensions/mcp_mes installcheck PG_CONFIG="$PG_CONFIG" || status=1
if [ -d tests/isolation/specs ]; then
    "$pgxs/src/test/isolation/pg_isolation_regress" "${common[@]}" --dbname=mcp_isolation \
        --inputdir=tests/isolation --outputdir=tests/isolation \
        --schedule=tests/isolation/schedule || status=1
fi
if [ $status -ne 0 ]; then
    for f in tests/regress/regression.diffs extensions/mcp_mes/test/regression.diffs \
             tests/isolation/regression.diffs; do
        [ -s "$f" ] && { echo "---- $f"; cat "$f"; }
    done
fi
exit $status
