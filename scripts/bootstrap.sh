#!/usr/bin/env bash
# Installs what building and testing need on a bare Debian 12 machine with Rust,
# skipping every step already done: Debian packages, cargo-pgrx 0.18.0, pgrx init,
# and (with --python) the virtual environment of the end-to-end tests.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
PGRX_VERSION=0.18.0
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# openssl: the end-to-end tests make a throwaway certificate to test TLS.
packages=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libclang-dev sudo openssl curl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    sudo_if_needed apt-get update -q
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "cargo-pgrx $PGRX_VERSION"; then
    say "installing cargo-pgrx $PGRX_VERSION (about 4 minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

pgrx_home=${PGRX_HOME:-$HOME/.pgrx}
if ! grep -qs "pg$PG_MAJOR = \"$PG_CONFIG\"" "$pgrx_home/config.toml"; then
    say "cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
    cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG"
fi

if [ "${1:-}" = "--python" ]; then
    # The end-to-end clients: Python venvs (mcp SDK) and npm (MCP Inspector CLI).
    extra=()
    python3 -m venv --help >/dev/null 2>&1 || extra+=(python3-venv)
    command -v npm >/dev/null 2>&1 || extra+=(nodejs npm)
    # The OAuth consent page is driven in a real browser (tests/e2e/node/oauth.mjs).
    command -v chromium >/dev/null 2>&1 || extra+=(chromium)
    if [ ${#extra[@]} -gt 0 ]; then
        say "installing ${extra[*]}"
        sudo_if_needed apt-get update -q
        sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${extra[@]}"
    fi
    # Two client generations: SDK 1.x speaks the initialize handshake, 2.x the
    # 2026-07-28 era (server/discover).
    for pair in ".venv:requirements.txt" ".venv-modern:requirements-modern.txt"; do
        venv="$here/${pair%%:*}"
        req="$here/tests/e2e/${pair#*:}"
        if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/.requirements"; then
            say "creating $venv for the end-to-end tests"
            python3 -m venv "$venv"
            "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
            cp "$req" "$venv/.requirements"
        fi
    done
fi
