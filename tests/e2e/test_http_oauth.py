"""`mcp-auth serve --http --oauth-issuer` (issue 20): OAuth 2.1 beside keys. The flow
through raw HTTP (what a host's OAuth client sends, and what an attacker would), the
official Python SDK's OAuth client provider with an opener that posts the consent
form, and the refusals: PKCE, redirect URIs, audience, refresh-token reuse and
expiry, the key's own state, CSRF, registration caps and the consent page's limit.
Without `--oauth-issuer` nothing of it exists. Run by scripts/e2e.sh."""

import asyncio
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import secrets
import subprocess
import threading
import traceback
import urllib.parse

from http_server import Server, free_port, stderr_files
from tap import DB_URL, FULL_KEY, RO_KEY, SERVER, TENANT, check, finish, psql, start

start("http oauth")

NO_LIMITS = ["--oauth-clients-per-ip", "1000", "--oauth-attempts-per-minute", "1000"]
CALLBACK = "http://127.0.0.1:9/callback"  # never listened on: the tests read the Location


def pg_log_errors():
    with open(os.environ["E2E_PG_LOG"], errors="replace") as f:
        return sum(1 for line in f if "ERROR:" in line)


def oauth_server(*args, host="127.0.0.1", limits=True):
    port = free_port()
    extra = NO_LIMITS if limits else []
    s = Server(DB_URL, "--oauth-issuer", f"http://{host}:{port}", *extra, *args, port=port)
    s.issuer = f"http://{host}:{port}"
    s.resource = f"{s.issuer}/mcp"
    return s


def new_key(name, **options):
    extra = "".join(f", {k} := {v}" for k, v in options.items())
    psql(f"DELETE FROM mcp_authentication_keys WHERE name = '{name}'")
    return psql(f"SET mcp_auth.bcrypt_cost = 4; SELECT api_key FROM generate_mcp_key('{TENANT}', '{name}'{extra})"
                ).splitlines()[-1]


def send(server, method, path, body=None, headers=None, host=None):
    """One request; (status, lower-cased headers with Set-Cookie kept whole, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    h = {"Host": host or urllib.parse.urlsplit(server.issuer).netloc}
    h.update(headers or {})
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body, doseq=True)
        h.setdefault("Content-Type", "application/x-www-form-urlencoded")
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read().decode(errors="replace")
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def register(server, name="e2e client", redirects=(CALLBACK,)):
    status, _, body = send(server, "POST", "/register",
                           json.dumps({"client_name": name, "redirect_uris": list(redirects),
                                       "grant_types": ["authorization_code", "refresh_token"],
                                       "response_types": ["code"], "token_endpoint_auth_method": "none"}),
                           {"Content-Type": "application/json"})
    return status, json.loads(body)


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(client_id, challenge, state="st-1", redirect_uri=CALLBACK, **extra):
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
         "code_challenge": challenge, "code_challenge_method": "S256", "state": state, **extra}
    return "/authorize?" + urllib.parse.urlencode(q)


class Browser:
    """The user's browser on the consent page: keeps the sign-in's cookie."""

    def __init__(self, server):
        self.server = server
        self.cookie = None
        self.fields = {}

    def read_form(self, page):
        self.fields = dict(re.findall(r'<input type=hidden name=(\w+) value="([^"]*)"', page))

    def open(self, path):
        status, headers, page = send(self.server, "GET", path)
        if "set-cookie" in headers:
            self.cookie = headers["set-cookie"].split(";")[0]
        self.read_form(page)
        return status, headers, page

    def post(self, fields, origin="issuer", cookie=True):
        h = {}
        if cookie and self.cookie:
            h["Cookie"] = self.cookie
        if origin:
            h["Origin"] = self.server.issuer if origin == "issuer" else origin
        base = {"request": self.fields.get("request", ""), "csrf": self.fields.get("csrf", "")}
        base.update(fields)
        status, headers, page = send(self.server, "POST", "/authorize", base, h)
        if status in (200, 401) and "name=request" in page:
            self.read_form(page)  # as a browser goes on from the page it got
        return status, headers, page


def consent(server, path, key, keep=None):
    """The whole consent as a user does it; the redirect's query (or the last answer)."""
    b = Browser(server)
    status, _, page = b.open(path)
    if status != 200:
        return {"status": status, "page": page}
    status, _, page = b.post({"action": "check", "api_key": key})
    if status != 200:
        return {"status": status, "page": page}
    tools = re.findall(r'name=tool value="([^"]+)"', page)
    status, headers, page = b.post({"action": "allow", "tool": keep if keep is not None else tools})
    if status != 303:
        return {"status": status, "page": page}
    location = headers["location"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    query["location"] = location
    return query


def token(server, fields):
    status, headers, body = send(server, "POST", "/token", fields)
    return status, headers, json.loads(body)


def grant(server, client_id, key=FULL_KEY, keep=None):
    verifier, challenge = pkce()
    q = consent(server, authorize_url(client_id, challenge), key, keep)
    status, _, t = token(server, {"grant_type": "authorization_code", "code": q.get("code", ""),
                                  "code_verifier": verifier, "redirect_uri": CALLBACK,
                                  "client_id": client_id, "resource": server.resource})
    return t


def mcp(server, bearer, method, params=None, id=1):
    status, headers, body = send(server, "POST", "/mcp",
                                 json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}),
                                 {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json",
                                  "Accept": "application/json, text/event-stream",
                                  "MCP-Protocol-Version": "2025-06-18"})
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body
    return status, headers, parsed


def tool_names(answer):
    return sorted(t["name"] for t in answer["result"]["tools"])


def without_oauth():
    s = Server(DB_URL)
    try:
        status, _, _ = s.get("/.well-known/oauth-protected-resource")
        status2, _, _ = s.get("/.well-known/oauth-authorization-server")
        check("without --oauth-issuer: no .well-known route (404)", status == 404 and status2 == 404, (status, status2))
        status, headers, _ = s.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        check("without --oauth-issuer: a 401 names no resource_metadata",
              status == 401 and "resource_metadata" not in headers.get("www-authenticate", ""), headers)
        status, _, _ = s.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, key="mcp_at_" + "a" * 46)
        check("without --oauth-issuer: a token-shaped bearer is a malformed key (401)", status == 401, status)
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        c.request("GET", "/authorize?client_id=x")
        check("without --oauth-issuer: no /authorize", c.getresponse().status == 404)
    finally:
        s.stop()


def metadata(s):
    status, headers, body = send(s, "GET", "/.well-known/oauth-protected-resource/mcp")
    prm = json.loads(body)
    check("RFC 9728: the resource names itself and its authorization server",
          status == 200 and prm["resource"] == s.resource and prm["authorization_servers"] == [s.issuer], body)
    status, _, body = send(s, "GET", "/.well-known/oauth-authorization-server")
    asm = json.loads(body)
    check("RFC 8414: issuer, endpoints, S256 only, public clients, RFC 9207 iss",
          status == 200 and asm["issuer"] == s.issuer and asm["token_endpoint"] == f"{s.issuer}/token"
          and asm["code_challenge_methods_supported"] == ["S256"]
          and asm["token_endpoint_auth_methods_supported"] == ["none"]
          and asm["authorization_response_iss_parameter_supported"] is True
          and asm["client_id_metadata_document_supported"] is True, body)
    status, headers, _ = mcp(s, "", "tools/list")
    status, headers, _ = send(s, "POST", "/mcp", "{}", {"Content-Type": "application/json"})
    challenge = headers.get("www-authenticate", "")
    check("every 401 names the resource metadata and the scope",
          status == 401 and f'resource_metadata="{s.issuer}/.well-known/oauth-protected-resource/mcp"' in challenge
          and 'scope="mcp"' in challenge, challenge)
    status, headers, _ = send(s, "OPTIONS", "/token", headers={"Origin": "https://app.example",
                                                              "Access-Control-Request-Method": "POST"})
    check("the OAuth API answers a browser's preflight (CORS)",
          status == 204 and headers.get("access-control-allow-origin") == "*", (status, headers))


def the_flow(s):
    status, client = register(s)
    check("dynamic registration (RFC 7591): 201 with a public client_id",
          status == 201 and client["client_id"].startswith("mcp_client_")
          and client["token_endpoint_auth_method"] == "none", client)
    cid = client["client_id"]
    verifier, challenge = pkce()
    b = Browser(s)
    status, headers, page = b.open(authorize_url(cid, challenge, resource=s.resource))
    csp = headers.get("content-security-policy", "")
    check("the consent page names the client and its redirect host, asks for the key",
          status == 200 and "e2e client" in page and "127.0.0.1" in page and 'name=api_key' in page, page[:300])
    check("the consent page cannot be framed and is not cached",
          "frame-ancestors 'none'" in csp and headers.get("x-frame-options") == "DENY"
          and headers.get("cache-control") == "no-store" and "script" not in page.lower(), headers)
    check("the sign-in's CSRF cookie is HttpOnly and SameSite=Strict",
          b.cookie and "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"], headers)
    status, _, page = b.post({"action": "check", "api_key": FULL_KEY[:-6] + "000000"})
    check("a wrong key gets the guide's message", status == 401 and "Invalid or disabled MCP key" in page, page[-400:])
    status, _, page = b.post({"action": "check", "api_key": FULL_KEY})
    shown = re.findall(r'name=tool value="([^"]+)"', page)
    check("the right key shows its tenant, its name and every tool it may call, ticked",
          status == 200 and "e2e-shop-floor" in page and TENANT in page and "E2E full" in page
          and "fetch_jobs" in shown and "create_job" in shown and page.count(" checked>") == len(shown), page[-600:])
    check("the key is not written back into the page", FULL_KEY not in page)
    status, headers, _ = b.post({"action": "allow", "tool": ["fetch_jobs", "fetch_parts"]})
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers.get("location", "")).query))
    check("allow: 303 back to the exact redirect URI with the code, the state and iss (RFC 9207)",
          status == 303 and headers["location"].startswith(CALLBACK + "?") and q.get("code", "").startswith("mcp_ac_")
          and q.get("state") == "st-1" and q.get("iss") == s.issuer, headers)
    form = {"grant_type": "authorization_code", "code": q["code"], "code_verifier": verifier,
            "redirect_uri": CALLBACK, "client_id": cid, "resource": s.resource}
    status, headers, t = token(s, form)
    check("the code is exchanged for a 1-hour access token and a refresh token, not cached",
          status == 200 and t["access_token"].startswith("mcp_at_") and t["refresh_token"].startswith("mcp_rt_")
          and t["expires_in"] == 3600 and t["token_type"] == "Bearer" and headers.get("cache-control") == "no-store", t)
    at = t["access_token"]
    status, _, answer = mcp(s, at, "tools/list")
    check("tools/list with the token shows only the tools chosen",
          status == 200 and tool_names(answer) == ["fetch_jobs", "fetch_parts"], answer)
    status, _, answer = mcp(s, at, "tools/call", {"name": "fetch_jobs", "arguments": {"limit": 2}})
    check("a chosen tool is called with the token",
          status == 200 and answer["result"].get("isError") is not True
          and answer["result"]["structuredContent"]["count"] == 2, answer)
    status, headers, answer = mcp(s, at, "tools/call", {"name": "create_job", "arguments": {}})
    check("a tool outside the token's tools: 403 insufficient_scope, nothing run",
          status == 403 and 'error="insufficient_scope"' in headers.get("www-authenticate", "")
          and answer["error"]["data"]["type"] == "permission_error", (status, headers, answer))
    status, _, answer = mcp(s, FULL_KEY, "tools/list")
    check("a static key keeps working beside OAuth", status == 200 and "create_job" in tool_names(answer))
    row = psql("SELECT user_agent FROM mcp_key_usage_logs WHERE tool_name = 'fetch_jobs' "
               "AND user_agent LIKE '%OAuth client%' ORDER BY created_at DESC LIMIT 1")
    check("the audit row names the OAuth client", f"OAuth client e2e client ({cid})" in row, row)
    clients = psql(f"SET mcp_auth.tenant_id = '{TENANT}'; SELECT oauth_clients FROM mcp_keys WHERE name = 'E2E full'")
    check("mcp_keys shows the key's active clients", cid in clients, clients)
    listed = subprocess.run([SERVER, "keys", "list", "--tenant", TENANT, "--json"], capture_output=True, text=True,
                            env={"DATABASE_URL": DB_URL.replace("e2e_mcp_server", "postgres")}, timeout=30)
    check("mcp-auth keys list shows them", cid in listed.stdout, listed.stdout[-300:] + listed.stderr[-300:])
    dump = psql("SELECT count(*) FROM mcp_oauth_tokens WHERE digest IN "
                f"(encode(sha256('{at}'::bytea), 'hex'))") + psql(
        f"SELECT count(*) FROM (SELECT to_jsonb(t)::text AS r FROM mcp_oauth_tokens t) x WHERE r LIKE '%{at[7:27]}%'")
    check("tokens are stored only as SHA-256 digests", dump == "10", dump)

    # Refresh: a request from the wrong client spends nothing; rotation; the used
    # one is kept only a day (for reuse detection); its reuse revokes the family.
    status, _, wrong = token(s, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                                 "client_id": "mcp_client_someoneelse00000000"})
    check("a refresh from another client: invalid_grant, and the token is not spent",
          status == 400 and wrong["error"] == "invalid_grant", wrong)
    status, _, t2 = token(s, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"], "client_id": cid,
                              "resource": s.resource})
    kept = psql("SELECT expires_at <= now() + interval '1 day 1 minute' FROM mcp_oauth_tokens "
                f"WHERE digest = encode(sha256('{t['refresh_token']}'::bytea), 'hex')")
    check("a used refresh token is kept a day, not its 30", kept == "t", kept)
    check("refresh: a new access and refresh token", status == 200 and t2["refresh_token"] != t["refresh_token"], t2)
    status, _, t3 = token(s, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"], "client_id": cid})
    status2, _, answer = mcp(s, t2["access_token"], "tools/list")
    check("a reused refresh token: invalid_grant, and its whole family is revoked",
          status == 400 and t3["error"] == "invalid_grant" and status2 == 401, (t3, status2))
    status, _, again = token(s, form)
    check("a code used twice: invalid_grant", status == 400 and again["error"] == "invalid_grant", again)

    # RFC 7009.
    t4 = grant(s, cid)
    status, _, _ = send(s, "POST", "/revoke", {"token": t4["access_token"], "client_id": cid})
    status2, _, _ = mcp(s, t4["access_token"], "tools/list")
    check("revocation (RFC 7009): 200, and the token is refused at once", status == 200 and status2 == 401)
    status, _, _ = send(s, "POST", "/revoke", {"token": t4["refresh_token"], "client_id": "mcp_client_other"})
    status2, _, t5 = token(s, {"grant_type": "refresh_token", "refresh_token": t4["refresh_token"], "client_id": cid})
    check("another client cannot revoke a client's token (200, nothing revoked)",
          status == 200 and status2 == 200, (status, t5))

    # An admin revokes a client: its tokens, and a code not yet exchanged.
    t6 = grant(s, cid)
    verifier, challenge = pkce()
    pending_code = consent(s, authorize_url(cid, challenge), FULL_KEY)["code"]
    n = psql(f"SELECT revoke_mcp_oauth_client('{cid}')")
    status, _, _ = mcp(s, t6["access_token"], "tools/list")
    check("revoke_mcp_oauth_client ends the client's tokens", int(n) >= 1 and status == 401, (n, status))
    status, _, r = token(s, {"grant_type": "authorization_code", "code": pending_code, "code_verifier": verifier,
                             "redirect_uri": CALLBACK, "client_id": cid})
    check("...and its codes not yet exchanged", status == 400 and r["error"] == "invalid_grant", r)
    return cid


def refusals(s, cid):
    verifier, challenge = pkce()
    q = consent(s, authorize_url(cid, challenge), FULL_KEY)
    status, _, t = token(s, {"grant_type": "authorization_code", "code": q["code"], "code_verifier": pkce()[0],
                             "redirect_uri": CALLBACK, "client_id": cid})
    check("PKCE mismatch: invalid_grant", status == 400 and t["error"] == "invalid_grant"
          and "code_verifier" in t["error_description"], t)

    status, headers, page = send(s, "GET", authorize_url(cid, challenge, redirect_uri="http://127.0.0.1:9/other"))
    check("a redirect URI not registered: an error page, never a redirect",
          status == 400 and "location" not in headers and "redirect_uri" in page, (status, headers))
    status, headers, page = send(s, "GET", authorize_url(cid, challenge, redirect_uri=CALLBACK + "/"))
    check("redirect URIs match exactly (a trailing slash differs)", status == 400 and "location" not in headers)
    q = consent(s, authorize_url(cid, challenge), FULL_KEY)
    status, _, t = token(s, {"grant_type": "authorization_code", "code": q["code"], "code_verifier": verifier,
                             "redirect_uri": "http://127.0.0.1:9/other", "client_id": cid})
    check("a code redeemed with another redirect_uri: invalid_grant", status == 400 and t["error"] == "invalid_grant", t)
    status, headers, page = send(s, "GET", authorize_url(cid, challenge, code_challenge_method="plain"))
    check("plain PKCE is refused on the page, never redirected (no open redirector)",
          status == 400 and "location" not in headers and "S256" in page, headers)
    status, headers, _ = send(s, "GET", authorize_url(cid, challenge, response_type="token"))
    check("response_type other than code: refused on the page, never redirected",
          status == 400 and "location" not in headers, headers)
    status, headers, _ = send(s, "GET", authorize_url("mcp_client_unknown", challenge))
    check("an unknown client: an error page", status == 400 and "location" not in headers)
    status, headers, page = send(s, "GET", authorize_url(cid, challenge, resource="https://other.example/mcp"))
    check("a resource that is not this server: refused on the page",
          status == 400 and "location" not in headers and "resource" in page, headers)
    status, headers, page = send(s, "GET", authorize_url(cid, challenge, state="s" * 1025))
    check("a state over 1024 characters is refused (sign-ins in memory stay small)", status == 400, status)
    status, headers, page = send(s, "GET", authorize_url(cid, challenge) + "&x=" + "a" * 9000)
    check("an /authorize query over 8 KiB is refused", status == 400, status)
    errors = pg_log_errors()
    status, _, t = token(s, {"grant_type": "refresh_token", "refresh_token": "a\0b", "client_id": cid})
    status2, _, page = send(s, "GET", authorize_url("a\0b", challenge))
    check("a NUL in a form or query: 400, and no ERROR in the PostgreSQL log",
          status == 400 and status2 == 400 and pg_log_errors() == errors, (status, status2))

    # Another audience: a second server, another issuer, the same database.
    other = oauth_server(host="localhost")
    try:
        t = grant(s, cid)
        status, headers, _ = mcp(other, t["access_token"], "tools/list")
        check("a token for another audience: 401 invalid_token",
              status == 401 and 'error="invalid_token"' in headers.get("www-authenticate", ""), (status, headers))
        status, _, r = token(other, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                                     "client_id": cid})
        check("its refresh token at the other server: refused", status == 400 and r["error"] == "invalid_target", r)
        status, _, r = token(s, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                                 "client_id": cid, "resource": other.resource})
        check("a refresh asking for another resource: invalid_target", status == 400 and r["error"] == "invalid_target", r)
    finally:
        other.stop()

    # Rows held in another transaction (a tenant admin's revoke, left open): the
    # clean-up passes them by, and a grant that needs one gives up after 2 s.
    old_tokens = grant(s, cid)
    held = grant(s, cid)
    psql("UPDATE mcp_oauth_tokens SET expires_at = now() - interval '2 days' "
         f"WHERE digest = encode(sha256('{old_tokens['access_token']}'::bytea), 'hex')")
    admin = os.environ["E2E_ADMIN_PSQL"].split()
    holder = subprocess.Popen(admin + ["-Atc", "BEGIN; SELECT digest FROM mcp_oauth_tokens WHERE digest IN ("
                                       f"encode(sha256('{old_tokens['access_token']}'::bytea), 'hex'), "
                                       f"encode(sha256('{held['refresh_token']}'::bytea), 'hex')) FOR UPDATE; "
                                       "SELECT pg_sleep(8); COMMIT;"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time
        time.sleep(1)
        started = time.monotonic()
        fresh = grant(s, cid)
        quick = time.monotonic() - started
        started = time.monotonic()
        status, _, r = token(s, {"grant_type": "refresh_token", "refresh_token": held["refresh_token"],
                                 "client_id": cid})
        waited = time.monotonic() - started
        check("a grant passes by token rows held elsewhere (the clean-up skips them)",
              fresh.get("access_token", "").startswith("mcp_at_") and quick < 4, (quick, fresh))
        check("a refresh whose row is held gives up at once (503), not after the holder",
              status == 503 and r["error"] == "temporarily_unavailable" and waited < 2, (status, r, waited))
    finally:
        holder.wait(timeout=30)

    # A body that trickles is cut at the header timeout, as /mcp's is.
    slow = oauth_server("--header-timeout", "2")
    try:
        import socket
        import time
        c = socket.create_connection(("127.0.0.1", slow.port), timeout=10)
        c.sendall(f"POST /token HTTP/1.1\r\nHost: 127.0.0.1:{slow.port}\r\n"
                  "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant".encode())
        started = time.monotonic()
        answer = c.recv(4096)
        took = time.monotonic() - started
        c.close()
        check("a /token body that does not arrive is answered at the header timeout (2 s)",
              answer.startswith(b"HTTP/1.1 400") and took < 5, (answer[:80], took))
    finally:
        slow.stop()

    # Expired refresh and access tokens.
    t = grant(s, cid)
    psql("UPDATE mcp_oauth_tokens SET expires_at = now() - interval '1 second' "
         f"WHERE digest = encode(sha256('{t['refresh_token']}'::bytea), 'hex')")
    status, _, r = token(s, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"], "client_id": cid})
    check("an expired refresh token: invalid_grant", status == 400 and r["error"] == "invalid_grant", r)
    psql("UPDATE mcp_oauth_tokens SET expires_at = now() - interval '1 second' "
         f"WHERE digest = encode(sha256('{t['access_token']}'::bytea), 'hex')")
    status, _, _ = mcp(s, t["access_token"], "tools/list")
    check("an expired access token: 401", status == 401)

    # The key's own state ends its tokens on the very next request.
    for what, sql in [("disabling", "SELECT disable_mcp_key(id) FROM mcp_authentication_keys WHERE name = '{}'"),
                      ("revoking", "SELECT revoke_mcp_key(id) FROM mcp_authentication_keys WHERE name = '{}'"),
                      ("expiring", "UPDATE mcp_authentication_keys SET expires_at = now() - interval '1 second' "
                                   "WHERE name = '{}'"),
                      ("rotating (even with a grace period)",
                       "SELECT rotate_mcp_key(id, '1 hour') FROM mcp_authentication_keys WHERE name = '{}'")]:
        name = f"oauth {what.split()[0]}"
        key = new_key(name)
        t = grant(s, cid, key=key)
        before, _, _ = mcp(s, t["access_token"], "tools/call", {"name": "fetch_jobs", "arguments": {"limit": 1}})
        psql(sql.format(name))
        status, _, answer = mcp(s, t["access_token"], "tools/call", {"name": "fetch_jobs", "arguments": {"limit": 1}})
        status2, _, r = token(s, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"], "client_id": cid})
        check(f"{what} the key ends its tokens on the next request (401, no refresh)",
              before == 200 and status == 401 and "result" not in answer and status2 == 400
              and r["error"] == "invalid_grant", (before, status, answer, r))


def csrf_and_limits(s, cid):
    verifier, challenge = pkce()
    b = Browser(s)
    b.open(authorize_url(cid, challenge))
    status, _, page = b.post({"action": "check", "api_key": FULL_KEY}, cookie=False)
    check("CSRF: a post without the sign-in's cookie is refused (403)", status == 403 and "CSRF" in page, status)
    real = b.fields["csrf"]
    b.fields["csrf"] = "x" * len(real)
    status, _, page = b.post({"action": "check", "api_key": FULL_KEY})
    check("CSRF: a post with another token is refused (403)", status == 403, status)
    b.fields["csrf"] = real
    status, _, _ = b.post({"action": "check", "api_key": FULL_KEY}, origin="https://evil.example")
    check("a post from another site's page (Origin) is refused (403)", status == 403, status)
    status, _, page = b.post({"action": "check", "api_key": FULL_KEY})
    check("the same sign-in, from its own page, goes on", status == 200 and "fetch_jobs" in page, status)
    status, _, page = b.post({"action": "allow", "tool": []})
    check("allowing no tool asks again", status == 200 and "Choose at least one tool" in page, status)
    status, headers, _ = b.post({"action": "deny"})
    check("deny: back to the client with access_denied and the state",
          status == 303 and "error=access_denied" in headers["location"] and "state=st-1" in headers["location"], headers)
    status, _, _ = b.post({"action": "check", "api_key": FULL_KEY})
    check("an ended sign-in cannot be posted again", status == 400, status)

    crowded = oauth_server()
    try:
        opened = [send(crowded, "GET", authorize_url(cid, challenge))[0] for _ in range(40)]
        check("opening the consent page keeps nothing (40 opened from one address, all answered)",
              opened == [200] * 40, opened)

        def keyed(key):
            b = Browser(crowded)
            b.open(authorize_url(cid, challenge))
            return b.post({"action": "check", "api_key": key})[0]

        crowd = [new_key(f"oauth crowd {i}") for i in range(9)]
        one_key = [keyed(crowd[0]) for _ in range(5)]
        check("sign-ins kept for one key are capped (503 past 4)", one_key == [200] * 4 + [503], one_key)
        others = [keyed(k) for k in crowd[1:] for _ in range(4)]
        check("sign-ins kept from one address are capped (503 past 32)",
              others == [200] * 28 + [503] * 4, others)
    finally:
        crowded.stop()

    n = int(psql("SELECT count(*) FROM mcp_oauth_clients WHERE registered_from = '127.0.0.1' "
                 "AND created_at > now() - interval '1 day'"))
    capped = oauth_server("--oauth-clients-per-ip", str(n + 2), "--oauth-attempts-per-minute", "3", limits=False)
    try:
        results = [register(capped)[0] for _ in range(3)]
        check("registrations are capped per source address (429 past the cap)",
              results == [201, 201, 429], results)
        b = Browser(capped)
        b.open(authorize_url(cid, challenge))
        statuses = [b.post({"action": "check", "api_key": FULL_KEY[:-6] + "000000"})[0] for _ in range(3)]
        status, _, page = b.post({"action": "check", "api_key": FULL_KEY})
        check("the consent page limits key attempts per address",
              statuses == [401, 401, 401] and status == 401 and "Too many keys tried" in page, (statuses, status))
    finally:
        capped.stop()

    status, body = register(s, redirects=["http://evil.example/cb"])
    check("registration refuses an http redirect URI off loopback", status == 400
          and body["error"] == "invalid_redirect_uri", body)
    status, body = register(s, redirects=["javascript:alert(1)"])
    check("registration refuses a javascript: redirect URI", status == 400, body)
    status, body = register(s, redirects=["https://a;script-src/cb"])
    check("registration refuses a host that is not a host name", status == 400, body)
    status, body = register(s, name="Claude\u202e")
    check("registration refuses a name with a direction override", status == 400
          and body["error"] == "invalid_client_metadata", body)
    status, body = register(s, name="Dev \U0001F9D1\u200d\U0001F4BB \u2764\ufe0f")
    check("registration keeps emoji joiners and variation selectors in a name", status == 201, body)
    status, body = register(s, redirects=[f"{CALLBACK}/{'x' * 1990}" for _ in range(3)])
    check("registration refuses redirect URIs over 4096 characters in all", status == 400, body)
    errors = pg_log_errors()
    basic = base64.b64encode(b"a\x00b:").decode()
    status, _, _ = send(s, "POST", "/token", {"grant_type": "refresh_token", "refresh_token": "x"},
                        {"Authorization": f"Basic {basic}"})
    check("a NUL in HTTP Basic's client: refused before the database", status == 401 and pg_log_errors() == errors,
          status)
    status, _, body = send(s, "POST", "/register", json.dumps({"redirect_uris": [CALLBACK]}),
                           {"Content-Type": "text/plain"})
    check("registration takes JSON only (a page's plain form post registers nothing)", status == 415, body)


class DocumentServer(http.server.ThreadingHTTPServer):
    """Client ID Metadata Documents on loopback: /client.json, /redirect, /big."""


def documents():
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"{base}/client.json")
                self.end_headers()
                return
            body = {"/client.json": json.dumps({"client_id": f"{base}/client.json", "client_name": "Document client",
                                                "redirect_uris": [CALLBACK]}),
                    "/big": json.dumps({"client_id": f"{base}/big", "client_name": "x" * 9000,
                                        "redirect_uris": [CALLBACK]}),
                    "/liar": json.dumps({"client_id": "https://claude.ai/client.json", "redirect_uris": [CALLBACK]}),
                    "/bidi": json.dumps({"client_id": f"{base}/bidi", "client_name": "Claude\u202e",
                                         "redirect_uris": [CALLBACK]}),
                    "/csp": json.dumps({"client_id": f"{base}/csp", "client_name": "CSP",
                                        "redirect_uris": ["https://x;sandbox/cb"]}),
                    }.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

    server = DocumentServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, base


def client_documents():
    docs, base = documents()
    s = oauth_server("--oauth-allow-private-clients")
    strict = oauth_server()
    try:
        verifier, challenge = pkce()
        cid = f"{base}/client.json"
        q = consent(s, authorize_url(cid, challenge), FULL_KEY, keep=["fetch_jobs"])
        status, _, t = token(s, {"grant_type": "authorization_code", "code": q.get("code", ""),
                                 "code_verifier": verifier, "redirect_uri": CALLBACK, "client_id": cid})
        check("a metadata-document client (client_id is its URL) completes the flow",
              status == 200 and t.get("access_token", "").startswith("mcp_at_"), (q, t))
        _, _, page = send(s, "GET", authorize_url(cid, challenge))
        check("the consent page names the client as its document does", "Document client" in page)
        # Whoever holds the server's database login rewrites the document's record:
        # the server goes by what it read itself, never by the database's copy.
        subprocess.run(["psql", DB_URL, "-Atc",
                        f"SELECT mcp_oauth_describe_client('{cid}', 'Poisoned', ARRAY['http://127.0.0.1:9/evil'])"],
                       check=True, capture_output=True)
        status, headers, page = send(s, "GET", authorize_url(cid, challenge, redirect_uri="http://127.0.0.1:9/evil"))
        status2, _, page2 = send(s, "GET", authorize_url(cid, challenge))
        check("a document's record rewritten in the database redirects nowhere and names no one",
              status == 400 and "location" not in headers and "Poisoned" not in page
              and status2 == 200 and "Document client" in page2, (status, headers, page2[-300:]))
        for path, why in [("/redirect", "redirects are not followed"), ("/big", "over 5 KiB"),
                          ("/liar", "names another client_id"), ("/bidi", "breaks the rules for names"),
                          ("/csp", "lists a redirect URI that is not allowed")]:
            status, headers, page = send(s, "GET", authorize_url(f"{base}{path}", challenge))
            check(f"a metadata document that {why.split(' ', 1)[1] if why.startswith('is') else why}: refused",
                  status == 400 and why in page and "location" not in headers, page[-300:])
        own = f"http://localhost:{s.port}/authorize?client_id=x"
        status, _, page = send(s, "GET", authorize_url(own, challenge))
        check("a metadata document on this very server (by any name it answers to) is never fetched",
              status == 400 and "cannot be on this server" in page, page[-300:])
        status, _, page = send(strict, "GET", authorize_url(cid, challenge))
        check("without --oauth-allow-private-clients, a document on a private address or http is never fetched",
              status == 400 and "https" in page, page[-300:])
    finally:
        s.stop()
        strict.stop()
        docs.shutdown()


async def python_sdk(s):
    from mcp import ClientSession
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamablehttp_client
    from mcp.shared.auth import OAuthClientMetadata

    class Memory:
        def __init__(self):
            self.tokens, self.client = None, None

        async def get_tokens(self):
            return self.tokens

        async def set_tokens(self, tokens):
            self.tokens = tokens

        async def get_client_info(self):
            return self.client

        async def set_client_info(self, info):
            self.client = info

    landed = {}

    async def opener(url):
        # The user's browser: the consent form posted with the key, two tools kept.
        parts = urllib.parse.urlsplit(url)
        landed.update(await asyncio.to_thread(consent, s, f"{parts.path}?{parts.query}", FULL_KEY,
                                              ["fetch_jobs", "get_dashboard_stats"]))

    async def callback():
        return landed["code"], landed.get("state")

    storage = Memory()
    provider = OAuthClientProvider(
        server_url=s.resource,
        client_metadata=OAuthClientMetadata(client_name="e2e python sdk", redirect_uris=[CALLBACK],
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], token_endpoint_auth_method="none"),
        storage=storage, redirect_handler=opener, callback_handler=callback)
    async with streamablehttp_client(s.resource, auth=provider) as (r, w, _):
        async with ClientSession(r, w) as session:
            await session.initialize()
            listed = sorted(t.name for t in (await session.list_tools()).tools)
            result = await session.call_tool("fetch_jobs", {"limit": 2})
    check("the Python SDK's OAuth client provider completes the flow (registration, PKCE, consent, token)",
          storage.tokens is not None and storage.tokens.access_token.startswith("mcp_at_")
          and landed.get("iss") == s.issuer, landed)
    check("its tools/list shows the narrowed tools", listed == ["fetch_jobs", "get_dashboard_stats"], listed)
    check("its call of a chosen tool succeeds", not result.isError and result.structuredContent["count"] == 2,
          result)
    return storage.tokens.access_token


def no_secret_anywhere(secrets_seen):
    logs = "".join(open(f, errors="replace").read() for f in stderr_files)
    check("no key, code or token in any server log", not any(x in logs for x in secrets_seen))
    dump = subprocess.run(["pg_dump", "--data-only", *psql_conn()], capture_output=True, text=True).stdout
    check("no key, code or token in any table (pg_dump --data-only)", dump and not any(x in dump for x in secrets_seen))


def psql_conn():
    admin = os.environ["E2E_ADMIN_PSQL"].split()
    return [a for a in admin[1:] if a != "-X"]


def main():
    try:
        without_oauth()
    except Exception:
        check("without --oauth-issuer", False, traceback.format_exc())
    s = oauth_server()
    seen = [FULL_KEY, RO_KEY]
    try:
        for step in [metadata]:
            step(s)
        cid = the_flow(s)
        refusals(s, cid)
        csrf_and_limits(s, cid)
        client_documents()
        seen.append(asyncio.run(python_sdk(s)))
        seen.append(grant(s, cid)["refresh_token"])
    except Exception:
        check("oauth steps ran to the end", False, traceback.format_exc())
    finally:
        s.stop()
    no_secret_anywhere([x for x in seen if x])
    finish("http oauth")


main()
