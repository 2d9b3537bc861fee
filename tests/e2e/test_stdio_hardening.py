"""End-to-end: `mcp-auth serve` facing a client that does not play along.

Raw JSON-RPC over the server's stdin and stdout (an SDK would refuse to send most
of this). Run by scripts/e2e.sh after test_stdio.py, with the same environment.
Prints one `ok - ...` / `not ok - ...` line per check.
"""

import json
import os
import queue
import subprocess
import threading
import time
from tap import DB_URL, FULL_KEY, RO_KEY, SERVER, check, finish, psql, start

start("hardening")


class Raw:
    """One `mcp-auth serve` process, spoken to line by line."""

    def __init__(self, key=FULL_KEY):
        env = {"DATABASE_URL": DB_URL, "PATH": os.environ.get("PATH", "")}
        if key:
            env["MCP_API_KEY"] = key
        self.p = subprocess.Popen([SERVER, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.send({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        self.read()
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line)

    def send_bytes(self, b):
        self.p.stdin.write(b + b"\n")
        self.p.stdin.flush()

    def send(self, message):
        self.send_bytes(json.dumps(message).encode())

    def read_line(self, timeout=15):
        return self.lines.get(timeout=timeout)

    def read(self, timeout=15):
        return json.loads(self.read_line(timeout))

    def call(self, id, name, arguments, meta=None):
        params = {"name": name, "arguments": arguments}
        if meta is not None:
            params["_meta"] = meta
        self.send({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})

    def close(self):
        self.p.kill()
        self.p.wait()


def error_code(answer):
    return (answer.get("error") or {}).get("code")


def main():
    # A tool that takes two seconds, to show calls are not queued behind it.
    psql("CREATE OR REPLACE FUNCTION e2e_slow(p_args jsonb) RETURNS jsonb LANGUAGE sql "
         "AS $$ SELECT pg_sleep(2); SELECT '{\"slept\": true}'::jsonb $$")
    psql("SELECT register_mcp_tool('e2e_slow', 'test', 'Sleeps two seconds', '{\"type\": \"object\"}', "
         "'e2e_slow(jsonb)'::regprocedure, true)")
    s = Raw()
    try:
        # What rmcp alone answered with silence.
        s.send_bytes(b'{"jsonrpc": "2.0", "id": 1, "method": "ping"')
        a = s.read()
        check("a line that is not JSON gets -32700", error_code(a) == -32700 and a["id"] is None, a)
        s.send_bytes(b'{"jsonrpc": "2.0", "id": 2, "method": "ping", "params": {"x": "\xff"}}')
        a = s.read()
        check("invalid UTF-8 gets -32700", error_code(a) == -32700, a)
        s.send([{"jsonrpc": "2.0", "id": 3, "method": "ping"}])
        a = s.read()
        check("a batch gets one -32600 error", error_code(a) == -32600 and "batch" in a["error"]["message"], a)
        s.send_bytes(b'{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "fetch_jobs", '
                     b'"arguments": {"search": "' + b"x" * (5 * 1024 * 1024) + b'"}}}')
        a = s.read()
        check("a 5 MB line gets -32600 without being read into memory",
              error_code(a) == -32600 and "at most" in a["error"]["message"], a)
        s.send({"jsonrpc": "2.0", "id": 5, "method": "ping"})
        check("...and the session goes on", s.read().get("id") == 5)

        # A large argument is refused by size, and not echoed back.
        s.call(6, "fetch_jobs", {"search": "y" * 1_000_000})
        line = s.read_line()
        a = json.loads(line)
        text = a["result"]["content"][0]["text"]
        check("a 1 MB argument is refused by its size and not echoed (answer under 1 kB)",
              a["result"]["isError"] and "at most 65536 bytes" in text and len(line) < 1000, line[:300])

        # What PostgreSQL cannot hold is named, not reported as a database failure.
        s.call(7, "fetch_jobs", {"search": "a\u0000b"})
        a = s.read()
        check("a NUL in an argument is a validation error naming the field",
              a.get("result", {}).get("isError") and "arguments.search" in a["result"]["content"][0]["text"], a)
        s.call(8, "fetch\u0000jobs", {})
        a = s.read()
        check("a NUL in the tool name is a validation error naming it",
              a.get("result", {}).get("isError") and a["result"]["content"][0]["text"].startswith("name:"), a)

        # Unknown tools: -32602 for a key that may call everything; a narrower key
        # learns nothing.
        s.call(9, "no_such_tool", {})
        a = s.read()
        check("an unknown tool is -32602 for a key that may call every tool",
              error_code(a) == -32602 and "no_such_tool" in a["error"]["message"], a)
        s.call(10, "no_such_tool", {}, meta={"apiKey": RO_KEY})
        a = s.read()
        check("...and permission_error for a key with a narrower list",
              error_code(a) == -32000 and a["error"]["data"]["type"] == "permission_error", a)
        s.call(11, "fetch_jobs", {"limit": 1}, meta={"apiKey": 12345})
        a = s.read()
        check("a non-string _meta.apiKey is invalid and never falls back to MCP_API_KEY",
              error_code(a) == -32000 and a["error"]["data"]["type"] == "authentication_error", a)

        # A slow call holds nothing up; an id in flight cannot be reused.
        started = time.monotonic()
        s.call(20, "e2e_slow", {})
        time.sleep(0.2)
        s.call(20, "fetch_jobs", {"limit": 1})
        s.call(21, "fetch_jobs", {"limit": 1})
        first, second = s.read(), s.read()
        fast_at = time.monotonic() - started
        check("a second request with an id in flight gets -32600",
              first.get("id") == 20 and error_code(first) == -32600, first)
        check("a fast call is answered while a slow one runs",
              second.get("id") == 21 and "result" in second and fast_at < 1.5, (second, fast_at))
        slow = s.read()
        check("...and the slow call completes", slow.get("id") == 20 and slow["result"]["structuredContent"]["slept"],
              slow)
    finally:
        s.close()
        psql("DELETE FROM mcp_tools WHERE name = 'e2e_slow'")
        psql("DROP FUNCTION e2e_slow(jsonb)")
    finish("e2e hardening")


if __name__ == "__main__":
    main()
