"""End-to-end over Streamable HTTP in the 2026-07-28 protocol era (`server/discover`,
no initialize handshake), with the official Python MCP SDK 2.x. Run by scripts/e2e.sh;
starts its own `mcp-auth serve --http` on a free loopback port."""

import asyncio
import os
import traceback

import httpx2
from http_server import Server
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

DB_URL = os.environ["E2E_DATABASE_URL"]
FULL_KEY = os.environ["E2E_FULL_KEY"]
RO_KEY = os.environ["E2E_RO_KEY"]

results = []


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("ok - " if condition else "not ok - ") + "http modern: " + name
          + ("" if condition else f"  ({str(detail)[:600]})"), flush=True)


async def error_of(coro):
    try:
        await coro
    except Exception as e:  # the SDK's MCPError
        return e
    return None


async def session_checks(url):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {FULL_KEY}"}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.discover()
                check("server/discover settles on 2026-07-28", s.protocol_version == "2026-07-28",
                      s.protocol_version)
                tools = (await s.list_tools()).tools
                check("20 tools listed", len(tools) == 20, len(tools))
                r = await s.call_tool("fetch_jobs", {"status": "on_hold", "limit": 50})
                jobs = (r.structured_content or {}).get("jobs", [])
                check("fetch_jobs returns the tenant's on-hold jobs",
                      not r.is_error and jobs and all(j["status"] == "on_hold" for j in jobs), r)
                e = await error_of(s.call_tool("create_job", {"customer": "Globex"}, meta={"apiKey": RO_KEY}))
                check("the read-only key in _meta: -32000 Tool not allowed for this key",
                      e is not None and getattr(e, "code", None) == -32000
                      and "Tool not allowed for this key" in str(e), e)


def main():
    server = Server(DB_URL)
    try:
        asyncio.run(session_checks(server.url))
    finally:
        server.stop()

try:
    main()
except Exception:
    check("session ran", False, traceback.format_exc())
passed = sum(results)
print(f"e2e http modern: {passed} passed, {len(results) - passed} failed")
