"""End-to-end: the official Python MCP SDK drives `mcp-auth serve` over stdio.

Run by scripts/e2e.sh, which starts a private cluster, installs both extensions,
seeds a tenant, makes a login role in mcp_client and two keys, and passes them in
the environment. Prints one `ok - ...` / `not ok - ...` line per check.
"""

import asyncio
import json
import os
import re
import subprocess
import tempfile
import traceback

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError
from tap import DB_URL, FULL_KEY, RO_KEY, SERVER, TENANT, check, finish, psql

WRONG_KEY = FULL_KEY[:-5] + "XXXXX"
ADMIN_URL = os.environ["E2E_ADMIN_URL"]


async def session(env_key, body, stderr_path, url=DB_URL):
    env = {"DATABASE_URL": url, "PATH": os.environ.get("PATH", "")}
    if env_key is not None:
        env["MCP_API_KEY"] = env_key
    params = StdioServerParameters(command=SERVER, args=["serve"], env=env)
    with open(stderr_path, "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                await body(s, init)


async def expect_error(coro):
    try:
        await coro
    except McpError as e:
        return e.error
    return None


async def main():
    stderr_path = tempfile.mktemp(prefix="mcp-auth-e2e-", suffix=".log")

    async def with_env_key(s, init):
        own = subprocess.run([SERVER, "--version"], capture_output=True, text=True).stdout.split()[-1]
        check("initialize reports the tenant's server name and the server's own version",
              init.serverInfo.name == "e2e-shop-floor" and init.serverInfo.version == own, init.serverInfo)
        tools = (await s.list_tools()).tools
        check("the full key lists 20 tools", len(tools) == 20, len(tools))
        fetch = next(t for t in tools if t.name == "fetch_jobs")
        check("tools carry schemas and annotations",
              fetch.inputSchema["properties"]["limit"]["maximum"] == 500 and fetch.annotations.readOnlyHint is True,
              fetch)
        r = await s.call_tool("fetch_jobs", {"status": "in_progress", "limit": 50})
        jobs = (r.structuredContent or {}).get("jobs", [])
        check("fetch_jobs returns the tenant's in-progress jobs",
              not r.isError and jobs and all(j["status"] == "in_progress" for j in jobs), r)
        check("results also carry a text block", r.content and r.content[0].type == "text", r.content)
        r = await s.call_tool("fetch_jobs", {"status": "bogus"})
        check("a bad argument is an isError result naming the field",
              r.isError and "status" in r.content[0].text, r)
        job = psql("SELECT id FROM jobs WHERE status = 'not_started' LIMIT 1")
        r = await s.call_tool("complete_job", {"job_id": job})
        check("an invalid lifecycle move is an isError result",
              r.isError and "status is not_started" in r.content[0].text, r)
        err = await expect_error(s.call_tool("create_job", {"customer": "Globex"}, meta={"apiKey": RO_KEY}))
        check("_meta.apiKey wins: the read-only key may not create_job",
              err and err.code == -32000 and err.message == "Tool not allowed for this key"
              and err.data["type"] == "permission_error", err)
        err = await expect_error(s.call_tool("fetch_jobs", {}, meta={"apiKey": WRONG_KEY}))
        check("an invalid _meta.apiKey fails and never falls back",
              err and err.code == -32000 and err.message == "Invalid or disabled MCP key"
              and err.data["type"] == "authentication_error", err)
        r = await s.call_tool("fetch_jobs", {"limit": 1}, meta={"apiKey": ""})
        check("an empty _meta.apiKey counts as unset", not r.isError, r)
        # The server's connection is killed; the next call reconnects.
        psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE usename = 'e2e_mcp_server' AND pid <> pg_backend_pid()")
        await asyncio.sleep(0.5)
        r = await s.call_tool("fetch_jobs", {"limit": 1})
        check("after pg_terminate_backend the next call succeeds", not r.isError, r)

    async def read_only_env(s, init):
        tools = (await s.list_tools()).tools
        check("the read-only key lists exactly its 4 tools",
              sorted(t.name for t in tools) == ["fetch_jobs", "fetch_parts", "fetch_tasks", "get_dashboard_stats"],
              [t.name for t in tools])
        err = await expect_error(s.call_tool("create_job", {"customer": "Globex"}))
        check("create_job with the read-only key: Tool not allowed for this key",
              err and err.code == -32000 and err.message == "Tool not allowed for this key", err)

    async def empty_env(s, init):
        err = await expect_error(s.list_tools())
        check("an empty MCP_API_KEY is unset: no key, authentication_error",
              err and err.code == -32000 and err.data["type"] == "authentication_error", err)
        # A raw request: the SDK's call_tool would first list tools without a key to
        # learn output schemas, which this session cannot.
        r = await s.send_request(
            types.ClientRequest(types.CallToolRequest(params=types.CallToolRequestParams(
                name="get_dashboard_stats", arguments={}, _meta={"apiKey": FULL_KEY}))),
            types.CallToolResult)
        check("...and _meta.apiKey alone works", not r.isError and "jobs" in r.structuredContent, r)
        r = await s.send_request(
            types.ClientRequest(types.CallToolRequest(params=types.CallToolRequestParams(
                name="fetch_jobs", arguments={"status": "completed", "limit": 50}, _meta={"apiKey": FULL_KEY}))),
            types.CallToolResult)
        jobs = (r.structuredContent or {}).get("jobs", [])
        tenant_jobs = psql(f"SELECT count(*) FROM jobs WHERE tenant_id = '{TENANT}' AND status = 'completed'")
        check("fetch_jobs with meta={'apiKey': ...} returns the tenant's jobs",
              not r.isError and len(jobs) == int(tenant_jobs) > 0
              and all(j["tenant_id"] == TENANT and j["status"] == "completed" for j in jobs), r)

    async def wrong_env(s, init):
        err = await expect_error(s.list_tools())
        check("an invalid MCP_API_KEY gives JSON-RPC -32000 Invalid or disabled MCP key",
              err and err.code == -32000 and err.message == "Invalid or disabled MCP key", err)

    async def over_tls(s, init):
        r = await s.call_tool("fetch_jobs", {"limit": 1})
        ssl = psql("SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                   "WHERE a.usename = 'e2e_mcp_server'")
        check("with sslmode=require the server talks TLS to PostgreSQL", not r.isError and ssl == "t", (r, ssl))

    try:
        await session(FULL_KEY, over_tls, stderr_path, url=os.environ["E2E_TLS_DATABASE_URL"])
    except Exception:
        check("session over_tls ran", False, traceback.format_exc())

    # Verified TLS: the CA's certificate as sslrootcert; verify-ca does not check the name.
    for mode, url_env in [("verify-full", "E2E_VERIFY_FULL_URL"), ("verify-ca, by IP address", "E2E_VERIFY_CA_IP_URL")]:
        async def verified(s, init, mode=mode):
            r = await s.call_tool("fetch_jobs", {"limit": 1})
            check(f"sslmode={mode} with the server's CA as sslrootcert works", not r.isError, r)
        try:
            await session(FULL_KEY, verified, stderr_path, url=os.environ[url_env])
        except Exception:
            check(f"session over sslmode={mode} ran", False, traceback.format_exc())

    for env_key, body in [(FULL_KEY, with_env_key), (RO_KEY, read_only_env), ("", empty_env), (WRONG_KEY, wrong_env)]:
        try:
            await session(env_key, body, stderr_path)
        except Exception:
            check(f"session {body.__name__} ran", False, traceback.format_exc())

    # The oldest handshake this era still speaks: initialize at 2025-06-18, raw JSON-RPC.
    raw = subprocess.Popen([SERVER, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True,
                           env={"DATABASE_URL": DB_URL, "MCP_API_KEY": FULL_KEY})
    raw.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}}) + "\n")
    raw.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
    raw.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                "params": {"name": "get_dashboard_stats", "arguments": {}}}) + "\n")
    raw.stdin.flush()
    init = json.loads(raw.stdout.readline())
    call = json.loads(raw.stdout.readline())
    raw.kill()
    check("initialize at 2025-06-18 is answered in kind, and tools/call works",
          init["result"]["protocolVersion"] == "2025-06-18" and "jobs" in call["result"]["structuredContent"],
          (init, call))

    # Server events and health, recorded by the server for the key's tenant.
    events = psql("SELECT string_agg(DISTINCT event_type, ',' ORDER BY event_type) FROM mcp_server_logs")
    check("the server records connected and reconnected events", events == "connected,reconnected", events)
    check("the server records health checks", int(psql("SELECT count(*) FROM mcp_server_health")) > 0)

    # The operator CLI.
    def cli(*args, url=ADMIN_URL, key=None):
        env = {"DATABASE_URL": url, "PATH": os.environ.get("PATH", "")}
        if key:
            env["MCP_API_KEY"] = key
        return subprocess.run([SERVER, *args], env=env, capture_output=True, text=True, timeout=30)

    made = cli("keys", "create", "--tenant", TENANT, "--name", "CLI made", "--tools", '["fetch_*"]', "--json")
    new_key = json.loads(made.stdout)[0]["api_key"] if made.returncode == 0 else ""
    check("keys create prints a new key once", re.fullmatch(r"mcp_live_[0-9A-Za-z]{38}", new_key), made.stderr)
    listed = cli("keys", "list", "--tenant", TENANT, "--json")
    names = [k["name"] for k in json.loads(listed.stdout)] if listed.returncode == 0 else []
    check("keys list shows the tenant's keys without hashes",
          "CLI made" in names and "key_hash" not in listed.stdout and new_key not in listed.stdout, listed.stdout)
    status = cli("status", "--tenant", TENANT, "--json")
    check("status reports the indicator", status.returncode == 0 and json.loads(status.stdout)[0]["status"] == "online",
          status.stdout + status.stderr)
    doctor = cli("doctor", url=DB_URL, key=FULL_KEY)
    check("doctor passes for the server's role and key", doctor.returncode == 0 and "✘" not in doctor.stdout,
          doctor.stdout + doctor.stderr)
    doctor = cli("doctor", url=ADMIN_URL, key=WRONG_KEY)
    check("doctor flags a superuser login and a wrong key",
          doctor.returncode == 1 and doctor.stdout.count("✘") == 2 and WRONG_KEY not in doctor.stdout + doctor.stderr,
          doctor.stdout)
    for what, url_env in [("a certificate that does not name the host", "E2E_VERIFY_FULL_IP_URL"),
                          ("a certificate from another CA", "E2E_VERIFY_OTHER_CA_URL")]:
        refused = cli("doctor", url=os.environ[url_env], key=FULL_KEY)
        check(f"sslmode=verify-full refuses {what}",
              refused.returncode == 1 and "✘ database reachable" in refused.stdout
              and "certificate" in refused.stdout, refused.stdout + refused.stderr)
    watcher = subprocess.Popen([SERVER, "watch", "--json", "--tenant", TENANT], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True,
                               env={"DATABASE_URL": ADMIN_URL, "PATH": os.environ.get("PATH", "")})
    try:
        await asyncio.sleep(1.0)
        psql(f"SELECT call_tool('{FULL_KEY}', 'fetch_parts', '{{\"limit\": 1}}')")
        line = await asyncio.wait_for(asyncio.to_thread(watcher.stdout.readline), 10)
        toast = json.loads(line)
        check("watch shows the toast of a call", toast["tool"] == "fetch_parts" and toast["success"] is True, line)
    except Exception:
        check("watch shows the toast of a call", False, traceback.format_exc())
    finally:
        watcher.kill()

    stderr = open(stderr_path).read()
    check("no key appears in the server's stderr",
          all(k[16:] not in stderr for k in (FULL_KEY, RO_KEY, WRONG_KEY)), stderr[-500:])
    audited = psql("SELECT count(*) FROM mcp_key_usage_logs")
    secrets = " OR ".join(f"t LIKE '%{k[16:]}%'" for k in (FULL_KEY, RO_KEY, WRONG_KEY))
    leaked = psql("SELECT count(*) FROM (SELECT x::text AS t FROM mcp_key_usage_logs x "
                  "UNION ALL SELECT x::text FROM activity_log x UNION ALL SELECT x::text FROM mcp_server_logs x "
                  "UNION ALL SELECT x::text FROM mcp_server_health x UNION ALL SELECT x::text FROM mcp_authentication_keys x) s "
                  f"WHERE {secrets}")
    check("calls are audited and no stored row (usage, activity, server logs, health, keys) holds a key",
          int(audited) > 0 and leaked == "0", (audited, leaked))

    finish("e2e")


asyncio.run(main())
