"""The checks of one session in the 2026-07-28 protocol era (`server/discover`, no
initialize handshake), the same over stdio and over HTTP: the transport must not
change what a client sees."""

from tap import FULL_KEY, RO_KEY, check, error_of


async def check_session(s):
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
