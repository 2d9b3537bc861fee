# Sourced by the shell-driven test layers (dump, upgrade): a fresh private cluster
# named $cluster on port $1, stopped when the script exits, and TAP-style checks
# counted for scripts/test.sh. Ends with `finish NAME`.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
pgenv=$(scripts/cluster.sh fresh "$cluster" "$1") # fails the script if it fails
eval "$pgenv"
trap 'scripts/cluster.sh stop "$cluster"' EXIT
psql=(psql -X -q -v ON_ERROR_STOP=1 -At)
passed=0 failed=0
check() { # name, command...
    local name=$1; shift
    if "$@"; then echo "ok - $name"; passed=$((passed + 1)); else echo "not ok - $name"; failed=$((failed + 1)); fi
}
finish() { # layer name
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
