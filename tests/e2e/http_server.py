"""`mcp-auth serve --http` for the end-to-end tests: started on a free loopback port
(waiting for /healthz), spoken to with raw HTTP, stopped with SIGTERM. Standard
library only, so both SDK virtual environments can use it."""

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time

SERVER = os.environ["MCP_AUTH_BIN"]
# Where each server's stderr went (a test checks that no key is in any).
stderr_files = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `mcp-auth serve --http` process on a free loopback port."""

    def __init__(self, db_url, *args, tls=None, wait=True, port=None):
        self.port = port or free_port()
        self.tls = tls
        log = tempfile.NamedTemporaryFile(prefix="mcp-auth-http-", suffix=".log", delete=False)
        stderr_files.append(log.name)
        self.log = log.name
        env = {"DATABASE_URL": db_url, "PATH": os.environ.get("PATH", ""),
               # Never used over HTTP (each request brings its own key): set to show it.
               "MCP_API_KEY": os.environ.get("E2E_FULL_KEY", "")}
        extra = ["--tls-cert", tls[0], "--tls-key", tls[1]] if tls else []
        self.p = subprocess.Popen([SERVER, "serve", "--http", f"127.0.0.1:{self.port}", *extra, *args],
                                  stdout=subprocess.DEVNULL, stderr=log, env=env)
        if not wait:
            return
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the HTTP server did not come up (log {log.name})")

    def connection(self):
        if self.tls:
            context = ssl.create_default_context(cafile=self.tls[0])
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=20, context=context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)

    def get(self, path):
        c = self.connection()
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()

    def post(self, message, key=None, headers=None):
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
             "MCP-Protocol-Version": "2025-06-18"}
        if key:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        c = self.connection()
        c.request("POST", "/mcp", body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed

    def call(self, tool, arguments, key, id=1, meta=None):
        params = {"name": tool, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        return self.post({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}, key)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/mcp"

    def stop(self, timeout=20):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.p.wait(timeout)
