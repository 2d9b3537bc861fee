"""The MCP part of `make demo`: a real session with `mcp-auth serve` through the
official Python MCP SDK, printed as a readable transcript; over stdio, or over
Streamable HTTP when DEMO_HTTP_URL names a running `mcp-auth serve --http`."""

import asyncio
import json
import os

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError

SERVER = os.environ["MCP_AUTH_BIN"]
DB_URL = os.environ["DEMO_DATABASE_URL"]
FULL_KEY = os.environ["DEMO_FULL_KEY"]
RO_KEY = os.environ["DEMO_RO_KEY"]


def say(arrow, text):
    print(f"  {arrow} {text}")


async def main():
    params = StdioServerParameters(command=SERVER, args=["serve"],
                                   env={"DATABASE_URL": DB_URL, "MCP_API_KEY": FULL_KEY})
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                say("->", "initialize")
                say("<-", f"{init.serverInfo.name} {init.serverInfo.version}, protocol {init.protocolVersion}")
                tools = (await s.list_tools()).tools
                say("->", "tools/list (key from MCP_API_KEY)")
                say("<-", f"{len(tools)} tools: " + ", ".join(t.name for t in tools))
                say("->", 'tools/call fetch_jobs {"status": "in_progress", "limit": 3}')
                r = await s.call_tool("fetch_jobs", {"status": "in_progress", "limit": 3})
                for j in r.structuredContent["jobs"]:
                    say("<-", f'{j["job_number"]}  {j["customer"]:<18} {j["status"]}  due {j["due_date"]}')
                say("->", 'tools/call create_job {"customer": "Globex"} with _meta.apiKey = the read-only key')
                try:
                    await s.call_tool("create_job", {"customer": "Globex"}, meta={"apiKey": RO_KEY})
                except McpError as e:
                    say("<-", f"error {e.error.code}: {e.error.message} {json.dumps(e.error.data)}")
                say("->", "tools/call fetch_jobs with _meta.apiKey = a wrong key")
                try:
                    await s.call_tool("fetch_jobs", {}, meta={"apiKey": FULL_KEY[:-5] + "XXXXX"})
                except McpError as e:
                    say("<-", f"error {e.error.code}: {e.error.message} {json.dumps(e.error.data)}")



async def over_http(url):
    async with streamablehttp_client(url, headers={"Authorization": f"Bearer {FULL_KEY}"}) as (read, write, _):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            say("->", f"POST {url} initialize (Authorization: Bearer {FULL_KEY[:16]}...)")
            say("<-", f"{init.serverInfo.name} {init.serverInfo.version}, protocol {init.protocolVersion}")
            tools = (await s.list_tools()).tools
            say("->", "tools/list")
            say("<-", f"{len(tools)} tools")
            say("->", 'tools/call get_dashboard_stats {}')
            r = await s.call_tool("get_dashboard_stats", {})
            say("<-", "jobs " + json.dumps(r.structuredContent["jobs"]))


if os.environ.get("DEMO_HTTP_URL"):
    asyncio.run(over_http(os.environ["DEMO_HTTP_URL"]))
else:
    asyncio.run(main())
