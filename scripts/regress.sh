#!/usr/bin/env bash
# SQL tests: pg_regress (tests/regress) and pg_isolation_regress (tests/isolation)
# against a fresh private cluster, with the extension already installed (make install).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")/../..
cluster=${REGRESS_CLUSTER:-regress}

scripts/cluster.sh destroy "$cluster"
scripts/cluster.sh start "$cluster" "${REGRESS_PORT:-54331}"
trap 'scripts/cluster.sh stop "$cluster"' EXIT
eval "$(scripts/cluster.sh env "$cluster")"
common=(--host="$PGHOST" --port="$PGPORT" --user=postgres --bindir="$PGBIN")

status=0
rm -rf tests/regress/results
"$pgxs/src/test/regress/pg_regress" "${common[@]}" --dbname=mcp_regress \
    --inputdir=tests/regress --outputdir=tests/regress \
    --schedule=tests/regress/schedule || status=1
if [ -d tests/isolation/specs ]; then
    "$pgxs/src/test/isolation/pg_isolation_regress" "${common[@]}" --dbname=mcp_isolation \
        --inputdir=tests/isolation --outputdir=tests/isolation \
        --schedule=tests/isolation/schedule || status=1
fi
if [ $status -ne 0 ]; then
    for f in tests/regress/regression.diffs tests/isolation/regression.diffs; do
        [ -s "$f" ] && { echo "---- $f"; cat "$f"; }
    done
fi
exit $status
