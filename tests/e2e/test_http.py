"""End-to-end over Streamable HTTP: `mcp-auth serve --http`, driven by the official
Python MCP SDK's client (1.30: the initialize handshake) and by raw HTTP for what an
SDK would not send. Run by scripts/e2e.sh with its environment; starts its own
servers on free loopback ports. Prints one `ok - ...` / `not ok - ...` line per check.
"""

import asyncio
import http.client
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import traceback

from http_server import Server, free_port, stderr_files

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from tap import DB_URL, FULL_KEY, RO_KEY, SERVER, TENANT, check, error_of, finish, psql, start

start("http")

# What the stdio server answers for a refused key (test_stdio.py checks it there).
BAD_KEY_ERROR = {"code": -32000, "message": "Invalid or disabled MCP key",
                 "data": {"type": "authentication_error"}}


async def sdk_checks(server):
    async with streamablehttp_client(server.url, headers={"Authorization": f"Bearer {FULL_KEY}"}) as (r, w, _):
        async with ClientSession(r, w) as s:
            init = await s.initialize()
            check("initialize names the key's tenant's server", init.serverInfo.name == "e2e-shop-floor",
                  init.serverInfo)
            tools = (await s.list_tools()).tools
            check("20 tools listed for the full key", len(tools) == 20, len(tools))
            res = await s.call_tool("fetch_jobs", {"limit": 2})
            check("fetch_jobs answers two jobs", not res.isError and res.structuredContent["count"] == 2, res)
            res = await s.call_tool("start_job", {"job_id": "00000000-0000-4000-8000-000000000000"})
            check("a tool failure is an isError result", res.isError and "Job not found" in res.content[0].text,
                  res)
    async with streamablehttp_client(server.url, headers={"Authorization": f"Bearer {RO_KEY}"}) as (r, w, _):
        async with ClientSession(r, w) as s:
            await s.initialize()
            tools = sorted(t.name for t in (await s.list_tools()).tools)
            check("the read-only key sees its 4 tools", len(tools) == 4, tools)
            e = await error_of(s.call_tool("create_job", {"customer": "Globex"}))
            check("the read-only key may not create a job: -32000 with data.type permission_error",
                  e is not None and e.code == -32000 and (e.data or {}).get("type") == "permission_error", e)
            res = await s.call_tool("fetch_operations", {"limit": 1}, meta={"apiKey": FULL_KEY})
            check("_meta.apiKey wins over the bearer key", not res.isError, res)


def main():
    with tempfile.TemporaryDirectory() as certs:
        server = Server(DB_URL)
        try:
            asyncio.run(sdk_checks(server))
        except Exception:
            check("SDK session ran", False, traceback.format_exc()[-1500:])

        # Raw HTTP: refusals an SDK would not provoke.
        status, headers, body = server.post(b"", key=None)
        check("no key: 401 with WWW-Authenticate: Bearer, before any body is read",
              status == 401 and headers.get("www-authenticate", "").startswith("Bearer")
              and body["error"]["data"]["type"] == "authentication_error", (status, headers, body))
        status, headers, body = server.call("fetch_jobs", {}, FULL_KEY[:-5] + "XXXXX")
        check("a bad key: 401, invalid_token, and the stdio server's JSON-RPC error",
              status == 401 and "invalid_token" in headers.get("www-authenticate", "")
              and body.get("error") == BAD_KEY_ERROR and body.get("id") == 1, (status, headers, body))
        status, _, body = server.post(b"x" * (2 * 1024 * 1024), key=FULL_KEY)
        check("a 2 MiB body: 413", status == 413, (status, body))
        status, _, body = server.post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, FULL_KEY,
                                      headers={"Origin": "http://evil.example"})
        check("a foreign Origin: 403", status == 403, (status, body))
        status, _, body = server.call("create_job", {"customer": "x"}, RO_KEY)
        check("permission: HTTP 200, -32000 with data.type permission_error",
              status == 200 and body["error"]["code"] == -32000
              and body["error"]["data"]["type"] == "permission_error", (status, body))
        psql("DELETE FROM mcp_authentication_keys WHERE name = 'E2E HTTP limited'")
        limited = psql("SET mcp_auth.bcrypt_cost = 4; SELECT api_key FROM generate_mcp_key("
                       f"'{TENANT}', 'E2E HTTP limited', p_rate_limit := 1)").splitlines()[-1]
        server.call("fetch_jobs", {"limit": 1}, limited)
        status, _, body = server.call("fetch_jobs", {"limit": 1}, limited)
        check("rate limit: -32000 with data.type rate_limit_error and retry_after_ms",
              status == 200 and body["error"]["data"]["type"] == "rate_limit_error"
              and body["error"]["data"]["retry_after_ms"] > 0, (status, body))
        status, _, body = server.get("/healthz")
        health = json.loads(body)
        check("/healthz: the database is reachable and mcp_auth 2.4.0 is there",
              status == 200 and health["database"] == "reachable" and health["mcp_auth"] == "2.4.0", health)
        # Issue 19: a name sent with a NUL in the arguments (refused before the
        # database sees it) became a label, unescaped, and forged a metric line.
        evil = 'evil"} 1\nmcp_auth_pool_size 99999\n# x{a="'
        server.post({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                     "params": {"name": evil, "arguments": {"a": "x\u0000"}}}, key=FULL_KEY)
        status, headers, body = server.get("/metrics")
        text = body.decode()
        check("/metrics: a name the database never saw is no label, and forges no line",
              "mcp_auth_pool_size 99999" not in text and "evil" not in text
              and 'mcp_auth_calls_total{tool="",outcome="invalid"}' in text, text[:2000])
        check("/metrics: calls by tool and outcome, latency, pool, refusals by type",
              status == 200 and 'mcp_auth_calls_total{tool="fetch_jobs",outcome="ok"}' in text
              and "mcp_auth_call_duration_seconds_bucket" in text and "mcp_auth_pool_in_use" in text
              and 'mcp_auth_refusals_total{type="missing_key"} 1' in text
              and 'mcp_auth_refusals_total{type="permission_error"}' in text, text[:2000])
        check("no key in what the server printed", server.stop() == 0 and all(
            FULL_KEY not in open(f).read() and RO_KEY not in open(f).read() for f in stderr_files))

        # One key's requests in flight are bounded; a slow call holds nobody else up.
        psql("CREATE OR REPLACE FUNCTION e2e_slow(p_args jsonb) RETURNS jsonb LANGUAGE sql "
             "AS $$ SELECT pg_sleep(2); SELECT '{\"slept\": true}'::jsonb $$")
        psql("SELECT register_mcp_tool('e2e_slow', 'test', 'Sleeps two seconds', '{\"type\": \"object\"}', "
             "'e2e_slow(jsonb)'::regprocedure, true)")
        server = Server(DB_URL, "--max-in-flight-per-key", "1", "--allow-origin", "http://localhost:3000")
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=server.call("e2e_slow", {}, FULL_KEY, id=7)))
        t.start()
        time.sleep(0.5)
        status, headers, body = server.call("fetch_jobs", {"limit": 1}, FULL_KEY)
        check("a second request of the key in flight: 429, Retry-After, data.type rate_limit_error",
              status == 429 and headers.get("retry-after") == "1"
              and body["error"]["data"]["type"] == "rate_limit_error", (status, headers, body))
        started = time.time()
        status, _, body = server.post({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                       "params": {"name": "fetch_jobs", "arguments": {"limit": 1}}}, RO_KEY,
                                      headers={"Origin": "http://localhost:3000"})
        check("another key is answered meanwhile, from an allowed Origin",
              status == 200 and "result" in body and time.time() - started < 1.5, (status, body))
        # SIGTERM: in-flight calls finish, new ones get 503.
        t.join()
        t = threading.Thread(target=lambda: slow.update(r=server.call("e2e_slow", {}, FULL_KEY, id=8)))
        t.start()
        time.sleep(0.5)
        server.p.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        status, headers, _ = server.call("fetch_jobs", {"limit": 1}, RO_KEY)
        check("after SIGTERM a new request gets 503", status == 503, (status, headers))
        t.join()
        check("...and the call in flight completes", slow["r"][0] == 200
              and slow["r"][2]["result"]["structuredContent"]["slept"], slow)
        check("...and the server exits cleanly", server.p.wait(20) == 0)
        # --statement-timeout cuts a slow handler: a tool failure, audited.
        server = Server(DB_URL, "--statement-timeout", "500")
        status, _, body = server.call("e2e_slow", {}, FULL_KEY)
        audited = psql("SELECT error_message FROM mcp_key_usage_logs WHERE tool_name = 'e2e_slow' "
                       "ORDER BY created_at DESC LIMIT 1")
        check("--statement-timeout: the slow call is an isError result, audited as timed out",
              status == 200 and body["result"]["isError"] and "57014" in body["result"]["content"][0]["text"]
              and audited == "canceling statement due to statement timeout", (status, body, audited))
        server.stop()
        psql("DELETE FROM mcp_tools WHERE name = 'e2e_slow'")
        psql("DROP FUNCTION e2e_slow(jsonb)")

        # HTTPS, and no plain HTTP off loopback.
        cert, key = os.path.join(certs, "server.crt"), os.path.join(certs, "server.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        server = Server(DB_URL, tls=(cert, key))
        status, _, body = server.call("fetch_jobs", {"limit": 1}, FULL_KEY)
        check("HTTPS with --tls-cert/--tls-key: a verified connection, a call answered",
              status == 200 and body["result"]["structuredContent"]["count"] == 1, (status, body))
        plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            plain.request("GET", "/healthz")
            refused = plain.getresponse().status != 200
        except (OSError, http.client.HTTPException):
            refused = True
        check("...and plain HTTP to that port gets no answer", refused)
        server.stop()
        p = subprocess.run([SERVER, "serve", "--http", f"0.0.0.0:{free_port()}"], capture_output=True, text=True,
                           env={"DATABASE_URL": DB_URL, "PATH": os.environ.get("PATH", "")}, timeout=20)
        check("off loopback without TLS: refused at start, naming --tls-cert",
              p.returncode == 2 and "--tls-cert" in p.stderr, (p.returncode, p.stderr))


try:
    main()
except Exception:
    check("the HTTP checks ran", False, traceback.format_exc())
finish("e2e http")
