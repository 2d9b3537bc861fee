#!/usr/bin/env bash
# Every test layer, in order of cost. Exits non-zero if any layer fails, and ends
# with one line counting the tests that passed and failed across all layers.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
logs="$here/target/test-logs"
mkdir -p "$logs"
passed=0 failed=0 broken=()

# Runs one layer, shows its output, and adds its counts (read by `count`) to the totals.
layer() { # name, count-function, command...
    local name=$1 counter=$2; shift 2
    printf '\n\033[1m==== %s\033[0m\n' "$name"
    "$@" 2>&1 | tee "$logs/$name.log"
    local rc=${PIPESTATUS[0]}
    read -r p f < <("$counter" "$logs/$name.log")
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$rc" -ne 0 ]; then
        broken+=("$name")
        [ "$f" -eq 0 ] && failed=$((failed + 1)) # a layer that failed before counting
    elif [ "$f" -gt 0 ]; then
        broken+=("$name") # a check said "not ok" in a script that went on
    fi
}
cargo_counts() { awk '/^test result:/ {p += $4; f += $6} END {print p+0, f+0}' "$1"; }
regress_counts() {
    awk '/^(test|     ) [a-z_]+ +\.\.\. ok/ {p++} /^(test|     ) [a-z_]+ +\.\.\. FAILED/ {f++}
         /^ok [0-9]/ {p++} /^not ok [0-9]/ {f++} END {print p+0, f+0}' "$1"
}
tap_counts() { awk '/^ok - / {p++} /^not ok - / {f++} END {print p+0, f+0}' "$1"; }

layer unit cargo_counts cargo test --workspace --exclude mcp_auth --exclude mcp_auth_integration
pgdata="$here/.clusters/pgrx-test"
mkdir -p "$pgdata" && chown postgres:postgres "$pgdata"
layer pg_test cargo_counts cargo pgrx test pg15 --runas postgres --pgdata "$pgdata/data"
layer install tap_counts make --no-print-directory install-extensions
layer regress regress_counts scripts/regress.sh
layer integration cargo_counts scripts/integration.sh
layer ledger tap_counts tests/ledger/run.sh
layer reinstall tap_counts tests/reinstall/run.sh
layer dump tap_counts tests/dump/run.sh
layer audit_chain tap_counts tests/audit_chain/run.sh
layer upgrade tap_counts tests/upgrade/run.sh
layer e2e tap_counts scripts/e2e.sh

echo
if [ ${#broken[@]} -gt 0 ]; then
    echo "failed layers: ${broken[*]} (logs in $logs)"
fi
echo "summary: $passed passed, $failed failed"
[ ${#broken[@]} -eq 0 ]
