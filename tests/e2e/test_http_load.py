"""Load and isolation through `mcp-auth serve --http`: 100 concurrent clients of 10
tenants for 30 seconds, each keeping its own tally, then every tally must equal the
audit rows the database wrote for that client's key; and one tenant flooding over its
limit while the others work: the flood is refused, the others are not. (How much the
flood slows the others is a benchmark figure: `make bench`.) Run by scripts/e2e.sh."""

import asyncio
import time
import traceback

import httpx
from http_server import Server
from tap import DB_URL, check, finish, psql, start

start("http load")

CLIENTS, TENANTS, SECONDS = 100, 10, 30


def tenant(i):
    return f"10ad0000-0000-4000-8000-{i:012d}"


def keys(prefix, per_tenant, tenants, rate_limit):
    """`per_tenant` keys for each of `tenants` tenants: [(tenant index, key id, key)]."""
    rows = psql(f"""SET mcp_auth.bcrypt_cost = 4;
        DELETE FROM mcp_authentication_keys WHERE name LIKE '{prefix} %';
        SELECT t || ' ' || k.key_id || ' ' || k.api_key
          FROM generate_series(0, {tenants - 1}) t, generate_series(1, {per_tenant}) n,
               generate_mcp_key(('10ad0000-0000-4000-8000-' || lpad(t::text, 12, '0'))::uuid,
                                '{prefix} ' || t || '/' || n, p_rate_limit := {rate_limit}) k""")
    return [(int(t), kid, key) for t, kid, key in
            (line.split() for line in rows.splitlines() if line.count(" ") == 2 and line[0].isdigit())]


async def call(client, url, key, tool, arguments, n):
    r = await client.post(url, json={"jsonrpc": "2.0", "id": n, "method": "tools/call",
                                     "params": {"name": tool, "arguments": arguments}},
                          headers={"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream",
                                   "MCP-Protocol-Version": "2025-06-18"})
    return r.status_code, r.json()


async def worker(url, key, deadline, tally, tool, arguments):
    async with httpx.AsyncClient(timeout=30) as client:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            status, body = await call(client, url, key, tool, arguments, n)
            if status == 200 and "result" in body and not body["result"].get("isError"):
                tally["ok"] += 1
            elif status == 200 and "error" in body:
                tally[body["error"].get("data", {}).get("type", "other")] = \
                    tally.get(body["error"].get("data", {}).get("type", "other"), 0) + 1
            else:
                tally[f"http {status}"] = tally.get(f"http {status}", 0) + 1


async def run(url):
    clients = keys("E2E load", CLIENTS // TENANTS, TENANTS, 1000000)
    tallies = [{"ok": 0} for _ in clients]
    deadline = time.monotonic() + SECONDS
    await asyncio.gather(*(worker(url, key, deadline, tally, "fetch_jobs", {"limit": 5})
                           for (_, _, key), tally in zip(clients, tallies)))
    total = sum(t["ok"] for t in tallies)
    check(f"{CLIENTS} clients of {TENANTS} tenants for {SECONDS} s: every call answered",
          all(set(t) == {"ok"} for t in tallies) and total > 0,
          [t for t in tallies if set(t) != {"ok"}][:5])
    audited = dict(line.split("|") for line in psql(
        "SELECT key_id || '|' || count(*) FILTER (WHERE success) FROM mcp_key_usage_logs "
        "WHERE key_id IN (SELECT id FROM mcp_authentication_keys WHERE name LIKE 'E2E load %') "
        "GROUP BY key_id").splitlines())
    mismatched = [(kid, t["ok"], audited.get(kid)) for (_, kid, _), t in zip(clients, tallies)
                  if str(t["ok"]) != audited.get(kid, "0")]
    check(f"every client's tally equals its key's audit rows ({total} calls)", not mismatched, mismatched[:5])
    tenants_seen = psql("SELECT count(DISTINCT tenant_id) FROM mcp_key_usage_logs WHERE key_id IN "
                        "(SELECT id FROM mcp_authentication_keys WHERE name LIKE 'E2E load %') "
                        "AND tenant_id::text LIKE '10ad0000-%'")
    check("each audit row is under its key's own tenant", tenants_seen == str(TENANTS), tenants_seen)

    # One tenant floods with a key limited to 60 calls a minute; two others work.
    flood = keys("E2E flood", 1, 1, 60)[0]
    calm = keys("E2E calm", 1, 3, 1000000)[1:]
    flood_tallies = [{"ok": 0} for _ in range(20)]
    calm_tallies = [{"ok": 0} for _ in calm]
    deadline = time.monotonic() + 10
    await asyncio.gather(
        *(worker(url, flood[2], deadline, t, "fetch_jobs", {"limit": 1}) for t in flood_tallies),
        *(worker(url, key, deadline, t, "fetch_jobs", {"limit": 1}) for (_, _, key), t in zip(calm, calm_tallies)))
    flooded_ok = sum(t["ok"] for t in flood_tallies)
    refused = sum(t.get("rate_limit_error", 0) + t.get("http 429", 0) for t in flood_tallies)
    check("the flooding key gets at most its 60 calls, the rest refused",
          flooded_ok <= 60 and refused > flooded_ok, (flooded_ok, refused, flood_tallies[:3]))
    check("the other tenants' calls are all answered meanwhile",
          all(set(t) == {"ok"} and t["ok"] > 0 for t in calm_tallies), calm_tallies)


def main():
    # 110 connections from one address: past the default per-address cap (64).
    server = Server(DB_URL, "--pool-size", "8", "--max-connections-per-ip", "256")
    try:
        asyncio.run(run(server.url))
    finally:
        server.stop(timeout=30)

try:
    main()
except Exception:
    check("the load ran", False, traceback.format_exc()[-600:])
finish("e2e http load")
