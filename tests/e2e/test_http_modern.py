"""End-to-end over Streamable HTTP in the 2026-07-28 protocol era (`server/discover`,
no initialize handshake), with the official Python MCP SDK 2.x. Run by scripts/e2e.sh;
starts its own `mcp-auth serve --http` on a free loopback port."""

import asyncio
import traceback

import httpx2
from http_server import Server
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from modern_session import check_session
from tap import DB_URL, FULL_KEY, check, finish, start

start("http modern")


async def session_checks(url):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {FULL_KEY}"}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await check_session(s)


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
finish("e2e http modern")
