"""End-to-end in the 2026-07-28 protocol era (`server/discover`, no initialize
handshake), with the official Python MCP SDK 2.x. Run by scripts/e2e.sh."""

import asyncio
import os
import sys
import traceback

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

SERVER = os.environ["MCP_AUTH_BIN"]
DB_URL = os.environ["E2E_DATABASE_URL"]
FULL_KEY = os.environ["E2E_FULL_KEY"]
RO_KEY = os.environ["E2E_RO_KEY"]

results = []


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("ok - " if condition else "not ok - ") + "modern: " + name + ("" if condition else f"  ({detail})"), flush=True)


async def error_of(coro):
    try:
        await coro
    except Exception as e:  # the SDK's MCPError
        return e
    return None


async def main():
    params = StdioServerParameters(command=SERVER, args=["serve"],
                                   env={"DATABASE_URL": DB_URL, "MCP_API_KEY": FULL_KEY})
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write):
            async with ClientSession(read, write) as s:
                await s.discover()
                check("server/discover settles on 2026-07-28", s.protocol_version == "2026-07-28", s.protocol_version)
                tools = (await s.list_tools()).tools
                check("20 tools listed", len(tools) == 20, len(tools))
                r = await s.call_tool("fetch_jobs", {"status": "on_hold", "limit": 50})
                jobs = (r.structured_content or {}).get("jobs", [])
                check("fetch_jobs returns the tenant's on-hold jobs",
                      not r.is_error and jobs and all(j["status"] == "on_hold" for j in jobs), r)
                e = await error_of(s.call_tool("create_job", {"customer": "Globex"}, meta={"apiKey": RO_KEY}))
                check("the read-only key in _meta: -32000 Tool not allowed for this key",
                      e is not None and getattr(e, "code", None) == -32000 and "Tool not allowed for this key" in str(e), e)
                e = await error_of(s.call_tool("fetch_jobs", {}, meta={"apiKey": FULL_KEY[:-5] + "XXXXX"}))
                check("a wrong key in _meta: -32000 Invalid or disabled MCP key",
                      e is not None and getattr(e, "code", None) == -32000 and "Invalid or disabled MCP key" in str(e), e)


try:
    asyncio.run(main())
except Exception:
    check("session ran", False, traceback.format_exc())
passed = sum(results)
print(f"e2e modern: {passed} passed, {len(results) - passed} failed")
sys.exit(0 if results and passed == len(results) else 1)
