#!/usr/bin/env bash
# Installs mcp_auth into the PostgreSQL that $PG_CONFIG names, safe while it runs.
#
# The library is written beside its place and renamed over it, never rewritten in
# place: a running backend has the old file mapped, and a copy that truncates and
# rewrites that file under it (what cp, install and `cargo pgrx install` do) makes it
# read a half-written library: "unrecognized function API version", then a crash
# that restarts every backend. A rename leaves running backends their old file
# (until they exit) and gives new ones the new one (tests/reinstall).
#
#   scripts/install.sh                  build (cargo pgrx package) and install it all
#   scripts/install.sh --library FILE   put FILE in place as the library, nothing else
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
libdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)

put_library() { # file
    local tmp="$libdir/.mcp_auth.so.$$"
    install -m 755 "$1" "$tmp"
    mv -f "$tmp" "$libdir/mcp_auth.so"
}

if [ "${1:-}" = --library ]; then
    put_library "${2:?--library needs a file}"
    exit 0
fi

cargo pgrx package --pg-config "$PG_CONFIG" >/dev/null
pkg="target/release/mcp_auth-pg$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
put_library "$pkg$libdir/mcp_auth.so"
install -m 644 "$pkg$sharedir"/extension/mcp_auth* "$sharedir/extension/"
# Released install scripts stay installable (pgrx generates only the current one).
install -m 644 sql/released/*.sql "$sharedir/extension/"
