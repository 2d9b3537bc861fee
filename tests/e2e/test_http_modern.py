"""End-to-end over Streamable HTTP in the 2026-07-28 protocol era (`server/discover`,
no initialize handshake), with the official Python MCP SDK 2.x. Run by scripts/e2e.sh;
starts its own `mcp-auth serve --http` on a free loopback port."""

import asyncio
import traceback

import httpx2
from http_server import Server, free_port
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from modern_session import check_session
from tap import DB_URL, FULL_KEY, check, finish, psql, start

start("http modern")


async def session_checks(url, bearer=FULL_KEY):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await check_session(s)


def oauth_token(resource):
    """An access token for FULL_KEY (all its tools), made as the server's SQL makes one
    (the RFC 7636 example verifier)."""
    verifier, challenge = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    return psql(f"""
        WITH c AS (SELECT mcp_oauth_register_client('modern', ARRAY['http://127.0.0.1:9/cb']) ->> 'client_id' AS id)
        SELECT mcp_oauth_token('authorization_code',
                   mcp_oauth_authorize('{FULL_KEY}', c.id, 'http://127.0.0.1:9/cb', '{challenge}', '{resource}') ->> 'code',
                   c.id, '{verifier}', 'http://127.0.0.1:9/cb', '{resource}') ->> 'access_token' FROM c""")


def main():
    server = Server(DB_URL)
    try:
        asyncio.run(session_checks(server.url))
    finally:
        server.stop()
    # The same session with an OAuth access token as the bearer (--oauth-issuer).
    port = free_port()
    server = Server(DB_URL, "--oauth-issuer", f"http://127.0.0.1:{port}", port=port)
    try:
        start("http modern oauth")
        asyncio.run(session_checks(server.url, oauth_token(f"http://127.0.0.1:{port}/mcp")))
    finally:
        server.stop()

try:
    main()
except Exception:
    check("session ran", False, traceback.format_exc())
finish("e2e http modern")
