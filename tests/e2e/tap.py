"""What every end-to-end script shares: one `ok - ...` / `not ok - ...` line per check
(read by scripts/test.sh), the closing count, psql as the superuser, and the error an
awaited call raised. Standard library only, so both SDK environments can use it."""

import os
import subprocess
import sys

_label = ""
results = []


def start(label):
    """Names the script's checks: `ok - <label>: <check>`."""
    global _label
    _label = label


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("ok - " if condition else "not ok - ") + (f"{_label}: " if _label else "") + name
          + ("" if condition else f"  ({str(detail)[:600]})"), flush=True)


def finish(title):
    """Prints the count and exits non-zero when a check failed."""
    passed = sum(results)
    print(f"{title}: {passed} passed, {len(results) - passed} failed", flush=True)
    sys.exit(0 if results and all(results) else 1)


def psql(sql):
    admin = os.environ["E2E_ADMIN_PSQL"].split()
    return subprocess.run(admin + ["-Atc", sql], check=True, capture_output=True, text=True).stdout.strip()


async def error_of(coro):
    """The JSON-RPC error an awaited call raised (SDK 1.x: McpError.error; 2.x: the
    MCPError itself, which has the code), or None."""
    try:
        await coro
    except Exception as e:
        return getattr(e, "error", e)
    return None


# What scripts/e2e.sh sets for every script.
SERVER = os.environ.get("MCP_AUTH_BIN", "")
DB_URL = os.environ.get("E2E_DATABASE_URL", "")
TENANT = os.environ.get("E2E_TENANT", "")
FULL_KEY = os.environ.get("E2E_FULL_KEY", "")
RO_KEY = os.environ.get("E2E_RO_KEY", "")
