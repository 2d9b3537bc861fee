"""End-to-end in the 2026-07-28 protocol era (`server/discover`, no initialize
handshake), with the official Python MCP SDK 2.x. Run by scripts/e2e.sh."""

import asyncio
import os
import traceback

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from modern_session import check_session
from tap import DB_URL, FULL_KEY, SERVER, check, finish, start

start("modern")


async def main():
    params = StdioServerParameters(command=SERVER, args=["serve"],
                                   env={"DATABASE_URL": DB_URL, "MCP_API_KEY": FULL_KEY})
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write):
            async with ClientSession(read, write) as s:
                await check_session(s)


try:
    asyncio.run(main())
except Exception:
    check("session ran", False, traceback.format_exc())
finish("e2e modern")
