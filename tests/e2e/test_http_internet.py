"""`mcp-auth serve --http` facing the internet (issue 19): what a client without a
valid key can do to it, what each kind of client is answered, and how one key is kept
from the others' share. Raw HTTP and raw sockets, since the point is what an SDK would
not send. Run by scripts/e2e.sh with its environment; starts its own servers."""

import json
import os
import resource
import socket
import subprocess
import threading
import time
import traceback

from http_server import Server, free_port, stderr_files
from tap import DB_URL, FULL_KEY, RO_KEY, SERVER, TENANT, check, finish, psql, start

start("http internet")

PG_LOG = os.environ["E2E_PG_LOG"]


def new_key(name, **options):
    extra = "".join(f", {k} := {v}" for k, v in options.items())
    psql(f"DELETE FROM mcp_authentication_keys WHERE name = '{name}'")
    return psql(f"SET mcp_auth.bcrypt_cost = 4; SELECT api_key FROM generate_mcp_key('{TENANT}', '{name}'{extra})"
                ).splitlines()[-1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def raw(port, data, source="127.0.0.1", timeout=5):
    """Sends bytes on a fresh connection; what came back before the close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except OSError as e:
        return out or repr(e).encode()
    finally:
        s.close()


def request(method, body, key=None, extra=""):
    head = f"{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    return (head + extra + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def call(tool, arguments, id=1, meta=None):
    params = {"name": tool, "arguments": arguments}
    if meta is not None:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "e2e", "version": "1"}}}


def pg_log_errors():
    with open(PG_LOG, errors="replace") as f:
        return sum(1 for line in f if "ERROR:" in line)


def attacks(server):
    # 1. A client naming tools of 200 KB (with a NUL, so the server refuses them
    # itself) grows neither the server's memory nor /metrics.
    rss = rss_kib(server.p.pid)
    for i in range(300):
        server.post(call("x" * 200_000 + str(i), {"a": "\u0000"}), FULL_KEY)
    grown = rss_kib(server.p.pid) - rss
    size = len(server.get("/metrics")[2])
    check("300 calls with 200 KB tool names: RSS grows under 16 MiB, /metrics stays under 16 KB",
          grown < 16 * 1024 and size < 16_000, (grown, size))

    # 4. A refused bearer writes nothing to the PostgreSQL log: a malformed one never
    # reaches the database, an unknown well-formed one is asked without an error.
    gone = new_key("E2E internet gone")
    psql("DELETE FROM mcp_authentication_keys WHERE name = 'E2E internet gone'")
    before = pg_log_errors()
    answers = [server.post(INIT, k)[0] for k in (gone, "mcp_live_" + "A" * 38, "junk")] + \
              [server.call("fetch_jobs", {}, gone)[0] for _ in range(3)]
    time.sleep(0.5)
    check("bad bearers (unknown, bad checksum, junk): all 401, and no ERROR line in the PostgreSQL log",
          answers == [401] * 6 and pg_log_errors() == before, (answers, pg_log_errors() - before))

    # Host and Origin on every route; /healthz never names the login role.
    for path in ("/healthz", "/metrics"):
        out = raw(server.port, f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode())
        check(f"{path} with a foreign Host: 403", out.startswith(b"HTTP/1.1 403"), out[:200])
        out = raw(server.port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
                               "Connection: close\r\n\r\n".encode())
        check(f"{path} with a foreign Origin: 403", out.startswith(b"HTTP/1.1 403"), out[:200])
    nobody = Server(DB_URL.replace("user=e2e_mcp_server", "user=e2e_no_such_role"), wait=False)
    status, body = None, b""
    for _ in range(100):
        try:
            status, _, body = nobody.get("/healthz")
            break
        except OSError:
            time.sleep(0.1)
    nobody.stop()
    check("/healthz with a refused login: 503, 'database unreachable', the role not named",
          status == 503 and json.loads(body)["database"] == "unreachable" and b"e2e_no_such_role" not in body,
          (status, body))


def slowloris():
    # 2. 2,000 connections sending half a header, from another address: the valid
    # client is still answered within a second, each surplus connection gets a 503
    # answer (not a reset), and the slow ones are cut at the header timeout.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    server = Server(DB_URL, "--header-timeout", "3", "--max-connections-per-ip", "64")
    held, refused_answers = [], 0
    try:
        for _ in range(2000):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=("127.0.0.2", 0))
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held.append(s)
        started = time.time()
        status, _, body = server.call("fetch_jobs", {"limit": 1}, FULL_KEY)
        took = time.time() - started
        check("2,000 slow connections from one address: a valid call is answered in under 1 s",
              status == 200 and body["result"]["structuredContent"]["count"] == 1 and took < 1.0, (status, took))
        for s in held[100:300]:
            s.settimeout(3)
            try:
                if s.recv(4096).startswith(b"HTTP/1.1 503"):
                    refused_answers += 1
            except OSError:
                pass
        check("...every connection past the per-address cap is answered 503, not reset",
              refused_answers == 200, refused_answers)
        time.sleep(4)
        cut = 0
        for s in held[:64]:
            s.settimeout(2)
            try:
                cut += s.recv(4096) == b""
            except OSError:
                cut += 1
        check("...and the 64 it kept are closed after the 3 s header timeout", cut == 64, cut)
    finally:
        for s in held:
            s.close()
        server.stop()
    # The total cap: past it, a 503 answer too.
    server = Server(DB_URL, "--max-connections", "50", "--max-connections-per-ip", "50", "--idle-timeout", "30")
    held = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.recv(4096)
            held.append(s)
        out = raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        check("past --max-connections: 503 with a JSON-RPC error naming the limit",
              out.startswith(b"HTTP/1.1 503") and b"50 connections" in out, out[:300])
    finally:
        for s in held:
            s.close()
        server.stop()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def one_key(server_args=()):
    # 3. The in-flight cap counts the key used, whatever the bearer; by default it is
    # half the pool, so another key always has a connection.
    psql("CREATE OR REPLACE FUNCTION e2e_slow3(p_args jsonb) RETURNS jsonb LANGUAGE sql "
         "AS $$ SELECT pg_sleep(3); SELECT '{\"slept\": true}'::jsonb $$")
    psql("SELECT register_mcp_tool('e2e_slow3', 'test', 'Sleeps three seconds', '{\"type\": \"object\"}', "
         "'e2e_slow3(jsonb)'::regprocedure, true)")
    other = new_key("E2E internet other")
    server = Server(DB_URL, "--pool-size", "4")
    try:
        slow = [None, None]
        threads = [threading.Thread(target=lambda i=i: slow.__setitem__(
            i, server.post(call("e2e_slow3", {}, id=10 + i, meta={"apiKey": FULL_KEY}), [RO_KEY, other][i])))
            for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.7)
        status, headers, body = server.post(call("fetch_jobs", {"limit": 1}, id=12, meta={"apiKey": FULL_KEY}),
                                            RO_KEY)
        check("a third call of the key in _meta.apiKey, under another bearer: 429 (default cap: half of 4), "
              "its id echoed", status == 429 and body["id"] == 12
              and body["error"]["data"]["type"] == "rate_limit_error", (status, body))
        started = time.time()
        status, _, body = server.call("fetch_jobs", {"limit": 1}, RO_KEY, id=13)
        check("...while another key is answered at once",
              status == 200 and "result" in body and time.time() - started < 1.0, (status, body))
        for t in threads:
            t.join()
        check("...and the two slow calls complete", all(s and s[0] == 200 for s in slow), slow)
    finally:
        server.stop()
    p = subprocess.run([SERVER, "serve", "--http", f"127.0.0.1:{free_port()}", "--pool-size", "4",
                        "--max-in-flight-per-key", "4"], capture_output=True, text=True,
                       env={"DATABASE_URL": DB_URL, "PATH": os.environ.get("PATH", "")}, timeout=20)
    check("--max-in-flight-per-key 4 with a pool of 4: refused at start, naming the rule",
          p.returncode == 2 and "below the pool size" in p.stderr, (p.returncode, p.stderr))

    # A full window is refused from memory: no round trip, so no audit row either.
    limited = new_key("E2E internet limited", p_rate_limit=1)
    server = Server(DB_URL)
    try:
        answers = [server.call("fetch_jobs", {"limit": 1}, limited, id=i)[2] for i in range(5)]
        audited = psql("SELECT count(*) FROM mcp_key_usage_logs WHERE key_id = "
                       "(SELECT id FROM mcp_authentication_keys WHERE name = 'E2E internet limited')")
        refused = [a for a in answers[1:] if a["error"]["data"]["type"] == "rate_limit_error"
                   and a["error"]["data"]["retry_after_ms"] > 0]
        check("a key over its limit: refused 4 times with retry_after_ms, the database asked only twice",
              "result" in answers[0] and len(refused) == 4 and audited == "2", (answers, audited))

        # Mcp-Name: a tool the database just refused the key is refused before the body.
        server.call("create_job", {"customer": "x"}, RO_KEY)
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {RO_KEY}\r\n"
                  "Content-Type: application/json\r\nMcp-Method: tools/call\r\nMcp-Name: create_job\r\n"
                  "Content-Length: 500000\r\n\r\n".encode())
        s.settimeout(2)
        try:
            out = s.recv(65536)
        except OSError as e:
            out = repr(e).encode()
        s.close()
        check("Mcp-Name of a tool just refused to the key: -32000 permission_error before the body is sent",
              b"permission_error" in out, out[:300])
    finally:
        server.stop()
    psql("DELETE FROM mcp_tools WHERE name = 'e2e_slow3'")
    psql("DROP FUNCTION e2e_slow3(jsonb)")


def protocol(server):
    # 5. A wrong key is told at connect: initialize gets 401 with error_description.
    status, headers, body = server.post(INIT, FULL_KEY[:-6] + "000000")
    check("initialize with a wrong key: 401, invalid_token, 'Invalid or disabled MCP key'",
          status == 401 and 'error="invalid_token"' in headers.get("www-authenticate", "")
          and 'error_description="Invalid or disabled MCP key"' in headers["www-authenticate"]
          and body["id"] == 1, (status, headers, body))
    versions = {server.post(INIT, k)[2]["result"]["serverInfo"]["version"] for k in (FULL_KEY, RO_KEY)}
    own = subprocess.run([SERVER, "--version"], capture_output=True, text=True).stdout.split()[-1]
    check("serverInfo.version is the server's own, whatever the key", versions == {own}, (versions, own))
    # 6. A refused _meta.apiKey is a JSON-RPC -32000, not a 401.
    for meta in ({"apiKey": FULL_KEY[:-6] + "000000"}, {"apiKey": 42}, {"apiKey": "junk"}):
        status, _, body = server.post(call("fetch_jobs", {}, id=5, meta=meta), RO_KEY)
        check(f"_meta {json.dumps(meta)[:40]} with a valid bearer: HTTP 200, -32000 authentication_error",
              status == 200 and body["error"]["code"] == -32000 and body["id"] == 5
              and body["error"]["data"]["type"] == "authentication_error", (status, body))
    # 7. Codes and formats.
    for what, params in (("arguments: \"x\"", {"name": "fetch_jobs", "arguments": "x"}),
                         ("name: 5", {"name": 5}), ("no params", None)):
        message = {"jsonrpc": "2.0", "id": 7, "method": "tools/call"}
        if params is not None:
            message["params"] = params
        status, _, body = server.post(message, FULL_KEY)
        check(f"tools/call with {what}: -32602", body["error"]["code"] == -32602 and body["id"] == 7,
              (status, body))
    status, _, body = server.post({"jsonrpc": "2.0", "id": 8, "method": "initialize", "params": {}}, FULL_KEY)
    check("initialize with {}: -32602", body["error"]["code"] == -32602 and body["id"] == 8, (status, body))
    status, headers, body = server.post(b"this is not json", FULL_KEY)
    check("a body that is not JSON: 400, application/json, -32700",
          status == 400 and headers["content-type"] == "application/json" and body["error"]["code"] == -32700,
          (status, headers, body))
    status, _, body = server.post({"jsonrpc": "2.0", "id": None, "method": "tools/list"}, FULL_KEY)
    check("\"id\": null: 400, -32600", status == 400 and body["error"]["code"] == -32600, (status, body))
    status, _, body = server.post({"jsonrpc": "2.0", "id": 31, "method": "tools/list"}, None)
    check("no bearer: 401 with the request's id", status == 401 and body["id"] == 31, (status, body))
    # 8. Accept: lenient where the answer is JSON.
    for accept in ("application/json", "*/*", None):
        headers = {"Accept": accept} if accept else {}
        message = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).encode()
        out = raw(server.port, request("POST", message, FULL_KEY,
                                       "".join(f"{k}: {v}\r\n" for k, v in headers.items())))
        check(f"Accept: {accept}: 200 with the tools", out.startswith(b"HTTP/1.1 200") and b'"tools"' in out,
              out[:300])
    # The 2026-07-28 headers: one that disagrees with the body is 400, -32020.
    status, _, body = server.post(call("fetch_jobs", {"limit": 1}, id=40), FULL_KEY,
                                  headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                                           "Mcp-Name": "fetch_parts"})
    check("Mcp-Name that disagrees with the body: 400, -32020",
          status == 400 and body["error"]["code"] == -32020 and body["id"] == 40, (status, body))


def fake_key():
    """A well-formed key no one was given: anyone can make one (the checksum is CRC-32)."""
    import binascii
    import random
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    head = "mcp_live_" + "".join(random.choice(alphabet) for _ in range(32))
    n, digits = binascii.crc32(head.encode()), ""
    while n:
        n, d = divmod(n, 62)
        digits = alphabet[d] + digits
    return head + digits.rjust(6, "0")


def closed_cleanly(s):
    """Reads to the end: True for an orderly close, False for a reset."""
    s.settimeout(5)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return False
    except OSError:
        return False


def attacker_findings(server):
    # What an attacker with no key found (helper-5), each a check.
    # Forged well-formed keys, their calls closed at once: rmcp's cancel-on-disconnect
    # used to cancel the statement, and PostgreSQL logged an ERROR with a backtrace.
    before = pg_log_errors()
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(request("POST", json.dumps(call("fetch_jobs", {}, id=i)).encode(), fake_key()))
        time.sleep(0.005)
        s.close()
    time.sleep(1)
    check("200 forged-key calls closed after 5 ms: no ERROR line in the PostgreSQL log",
          pg_log_errors() == before, pg_log_errors() - before)
    # rmcp's warnings quoted ids and methods, newlines and keys included, in stderr.
    server.post({"jsonrpc": "2.0", "id": "x\n ERROR forged line", "method": "nope"}, fake_key())
    server.post({"jsonrpc": "2.0", "id": 2, "method": FULL_KEY}, fake_key())
    time.sleep(0.3)
    log = open(server.log).read()
    check("ids and methods from clients never reach stderr", "forged line" not in log and FULL_KEY not in log,
          log[-500:])
    # A key quoted by the parser's message is cut from the answer.
    status, _, body = server.post({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                   "params": {"name": "fetch_jobs", "arguments": FULL_KEY}}, RO_KEY)
    check("-32602 for arguments that are a key: the key is not in the answer",
          body["error"]["code"] == -32602 and FULL_KEY not in json.dumps(body), body)
    # A member given twice: what the gate read is what rmcp reads (it answered 415).
    out = raw(server.port, request("POST", b'{"jsonrpc": "2.0", "id": 4, "id": 5, "method": "tools/list"}',
                                   FULL_KEY, "Accept: application/json\r\n"))
    check("a member given twice: answered as read (the last), 200 with the tools",
          out.startswith(b"HTTP/1.1 200") and b'"id":5' in out.replace(b" ", b""), out[:300])
    # Refusals sent before the body is read close cleanly, not with a reset.
    for what, head in (("413 for a declared 2 MiB body", f"Authorization: Bearer {FULL_KEY}\r\n"
                        "Content-Length: 2097152\r\n"),
                       ("403 for a foreign Origin", f"Authorization: Bearer {FULL_KEY}\r\nOrigin: http://evil.example\r\n"
                        "Content-Length: 200000\r\n"),
                       ("401 for a bad bearer with a 200 KB body", "Authorization: Bearer junk\r\n"
                        "Content-Length: 200000\r\n")):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{head}\r\n".encode()
                  + b"x" * 200_000)
        first = s.recv(12)
        check(f"{what}: answered, then an orderly close (no reset)",
              first.startswith(b"HTTP/1.1 4") and closed_cleanly(s), first)
        s.close()
    # HTTP/2 (prior knowledge): the host is in :authority, not in a Host header.
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                          f"http://127.0.0.1:{server.port}/healthz"], capture_output=True, text=True, timeout=20)
    check("HTTP/2 with prior knowledge: /healthz answers 200", out.stdout == "200 2", out)
    # The handshake counts under the bearer it checks, whatever _meta names.
    psql("CREATE OR REPLACE FUNCTION e2e_slow2(p_args jsonb) RETURNS jsonb LANGUAGE sql "
         "AS $$ SELECT pg_sleep(2); SELECT '{}'::jsonb $$")
    psql("SELECT register_mcp_tool('e2e_slow2', 'test', 'Sleeps two seconds', '{\"type\": \"object\"}', "
         "'e2e_slow2(jsonb)'::regprocedure, true)")
    try:
        threads = [threading.Thread(target=server.post, args=(call("e2e_slow2", {}, id=60 + i), FULL_KEY))
                   for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.7)
        init = dict(INIT, params=dict(INIT["params"], _meta={"apiKey": fake_key()}))
        status, _, body = server.post(init, FULL_KEY)
        for t in threads:
            t.join()
        check("initialize with a forged _meta key counts under its bearer: 429 while the bearer has 2 in flight",
              status == 429, (status, body))
    finally:
        psql("DELETE FROM mcp_tools WHERE name = 'e2e_slow2'")
        psql("DROP FUNCTION e2e_slow2(jsonb)")


def body_budget():
    # Request bodies held at once are bounded over all connections (HTTP/2 streams
    # too): 64 bodies of --max-body, then 503 before any is read.
    server = Server(DB_URL, "--max-body", "65536")
    held = []
    try:
        rss = rss_kib(server.p.pid)
        answers = []
        for i in range(80):
            source = f"127.0.0.{2 + i // 40}"
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=(source, 0))
            s.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {fake_key()}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 65536\r\n\r\n".encode() + b"{" * 60_000)
            held.append(s)
        time.sleep(3)  # a refused body is read for up to 2 s first
        for s in held:
            s.settimeout(0.2)
            try:
                answers.append(s.recv(12))
            except OSError:
                answers.append(b"")
        busy = sum(a.startswith(b"HTTP/1.1 503") for a in answers)
        grown = rss_kib(server.p.pid) - rss
        check("80 bodies of 64 KiB held open: 16 get 503 at once, the server holds under 16 MiB more",
              busy == 16 and grown < 16 * 1024, (busy, grown))
    finally:
        for s in held:
            s.close()
        server.stop()


def cancellation(server):
    # 9. notifications/cancelled stops the same key's call with that id, and only it.
    psql("CREATE OR REPLACE FUNCTION e2e_slow6(p_args jsonb) RETURNS jsonb LANGUAGE sql "
         "AS $$ SELECT pg_sleep(6); SELECT '{\"slept\": true}'::jsonb $$")
    psql("SELECT register_mcp_tool('e2e_slow6', 'test', 'Sleeps six seconds', '{\"type\": \"object\"}', "
         "'e2e_slow6(jsonb)'::regprocedure, true)")
    try:
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=server.post(call("e2e_slow6", {}, id=77), FULL_KEY)))
        started = time.time()
        t.start()
        time.sleep(0.7)
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77}}
        status, _, _ = server.post(cancel, RO_KEY)
        time.sleep(0.7)
        check("another key's cancel: 202, and the call runs on", status == 202 and t.is_alive())
        status, _, _ = server.post(cancel, FULL_KEY)
        t.join(10)
        took = time.time() - started
        status, _, body = slow["r"]
        audited = psql("SELECT error_message FROM mcp_key_usage_logs WHERE tool_name = 'e2e_slow6' "
                       "ORDER BY created_at DESC LIMIT 1")
        check("the key's own cancel: the call ends within 3 s of its 6, audited as cancelled",
              took < 3 and status == 200 and (body or {}).get("result", {}).get("isError")
              and audited == "canceling statement due to user request", (took, status, body, audited))
    finally:
        psql("DELETE FROM mcp_tools WHERE name = 'e2e_slow6'")
        psql("DROP FUNCTION e2e_slow6(jsonb)")


def main():
    server = Server(DB_URL)
    try:
        attacks(server)
        protocol(server)
        cancellation(server)
        attacker_findings(server)
    finally:
        server.stop()
    body_budget()
    one_key()
    slowloris()
    check("no key in what the servers printed", all(
        FULL_KEY not in open(f).read() and RO_KEY not in open(f).read() for f in stderr_files))


try:
    main()
except Exception:
    check("the internet checks ran", False, traceback.format_exc()[-600:])
finish("e2e http internet")
