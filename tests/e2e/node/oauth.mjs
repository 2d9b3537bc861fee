// OAuth 2.1 of `mcp-auth serve --oauth-issuer`, through clients that were not
// written for it: the official TypeScript SDK's OAuth client, mcp-remote (npm) as
// Claude Desktop runs it with the URL only, and the consent page in headless
// Chromium (with a CSRF attempt from another origin).
// Run by scripts/e2e.sh with its environment (E2E_FULL_KEY, E2E_ARTIFACTS) and the
// URL of a running server as the first argument. Prints one `ok - ...` /
// `not ok - ...` line per check.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import puppeteer from "puppeteer-core";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { consent, openConsent } from "./opener.mjs";
import { checker, withTimeout } from "./tap.mjs";

const url = process.argv[2];
const issuer = new URL(url).origin;
const FULL_KEY = process.env.E2E_FULL_KEY;
const WRONG_KEY = FULL_KEY.slice(0, -6) + "000000";
const artifacts = process.env.E2E_ARTIFACTS ?? tmpdir();
const here = new URL(".", import.meta.url).pathname;
const { check, finish } = checker("oauth node");

const base64url = (bytes) => Buffer.from(bytes).toString("base64url");
const sorted = (names) => [...names].sort().join(",");

/// tools/list as a bare JSON-RPC POST (no session needed) with a bearer.
async function listTools(bearer) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${bearer}`,
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "MCP-Protocol-Version": "2025-06-18",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  const text = await response.text();
  // The answer may come as one SSE event.
  const json = text.startsWith("{") ? text : text.match(/^data: (.*)$/m)?.[1];
  return { status: response.status, names: JSON.parse(json ?? "{}").result?.tools?.map((t) => t.name), text };
}

// --- a. The TypeScript SDK's OAuth client --------------------------------------

/// An OAuthClientProvider that keeps everything in memory; its "browser" consents
/// with plain fetch, keeping only `keep`.
class MemoryProvider {
  constructor(keep) {
    this.keep = keep;
    this.redirects = 0;
    this._tokens = undefined;
    this._client = undefined;
  }
  // Never fetched: the fetch "browser" stops at the redirect and reads the code.
  get redirectUrl() {
    return "http://127.0.0.1:9/callback";
  }
  get clientMetadata() {
    return {
      client_name: "e2e TypeScript SDK",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    this.sentState = base64url(randomBytes(16));
    return this.sentState;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }
  codeVerifier() {
    return this._verifier;
  }
  async redirectToAuthorization(authorizationUrl) {
    this.redirects++;
    this.authorizationUrl = authorizationUrl;
    const { location } = await consent(authorizationUrl.href, FULL_KEY, this.keep);
    this.location = location;
    this.code = location.searchParams.get("code");
  }
}

async function typescriptSdk() {
  const provider = new MemoryProvider(["fetch_jobs", "fetch_parts"]);
  // What /mcp answered, to see the 403 behind a refused call.
  const answers = [];
  const recording = async (input, init) => {
    const response = await fetch(input, init);
    if (String(input) === url) answers.push({ status: response.status, challenge: response.headers.get("www-authenticate") });
    return response;
  };
  const transport = () => new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recording });

  const first = transport();
  let error;
  try {
    await withTimeout(new Client({ name: "e2e-sdk-oauth", version: "1.0.0" }).connect(first), 20000, "connect");
  } catch (e) {
    error = e;
  }
  check("TypeScript SDK: the first connect registers, sends the browser to consent, and throws UnauthorizedError",
    error instanceof UnauthorizedError && provider.redirects === 1 && provider.code?.startsWith("mcp_ac_"),
    error?.stack ?? `redirects ${provider.redirects}, location ${provider.location}`);
  const location = provider.location;
  check("TypeScript SDK: the redirect carries the state sent and iss = the issuer (RFC 9207)",
    location?.searchParams.get("state") === provider.sentState && location?.searchParams.get("iss") === issuer,
    location);
  if (!provider.code) return;

  await first.finishAuth(provider.code);
  check("TypeScript SDK: finishAuth exchanged the code for an mcp_at_ token and a refresh token",
    provider.tokens()?.access_token?.startsWith("mcp_at_") && !!provider.tokens()?.refresh_token,
    JSON.stringify({ ...provider.tokens(), access_token: "…", refresh_token: "…" }));

  const client = new Client({ name: "e2e-sdk-oauth", version: "1.0.0" });
  try {
    await withTimeout(client.connect(transport()), 15000, "connect again");
  } catch (e) {
    check("TypeScript SDK: connecting again with the token succeeds", false, e?.stack ?? e);
    return;
  }
  check("TypeScript SDK: connecting again with the token succeeds", true);
  const names = (await client.listTools()).tools.map((t) => t.name);
  check("TypeScript SDK: tools/list names exactly the two tools kept", sorted(names) === "fetch_jobs,fetch_parts", names);
  const result = await client.callTool({ name: "fetch_jobs", arguments: { limit: 2 } });
  check("TypeScript SDK: fetch_jobs is answered", !result.isError && result.structuredContent?.count === 2,
    JSON.stringify(result));

  let refused;
  let answered;
  answers.length = 0;
  try {
    answered = await client.callTool({ name: "create_job", arguments: { customer: "x" } });
  } catch (e) {
    refused = e;
  }
  const scope = answers.find((a) => a.status === 403);
  check("TypeScript SDK: create_job (not chosen) is refused with an error, not a result",
    refused !== undefined && answered === undefined, JSON.stringify(answered));
  check("TypeScript SDK: ...the refusal is HTTP 403 with a Bearer insufficient_scope challenge",
    /^Bearer .*error="insufficient_scope"/.test(scope?.challenge ?? ""), JSON.stringify(answers));
  check("TypeScript SDK: ...and the user was not sent to the consent page again", provider.redirects === 1,
    provider.redirects);
  await client.close();
}

// --- b. mcp-remote with the URL only --------------------------------------------

async function mcpRemote() {
  const dir = mkdtempSync(join(tmpdir(), "mcp-remote-oauth-"));
  const config = join(dir, "config");
  const bin = join(dir, "bin");
  const log = join(dir, "opener.log");
  mkdirSync(config);
  mkdirSync(bin);
  // Every way mcp-remote (the `open` package, then its Linux fallbacks) may start
  // a browser leads to the opener.
  const browser = join(bin, "browser");
  writeFileSync(browser, `#!/bin/sh\nexec node ${join(here, "opener.mjs")} "$1" >>${log} 2>&1\n`);
  chmodSync(browser, 0o755);
  for (const name of ["xdg-open", "open", "x-www-browser", "sensible-browser"]) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec ${browser} "$1"\n`);
    chmodSync(join(bin, name), 0o755);
  }
  let stderr = "";
  const transport = new StdioClientTransport({
    command: join(here, "node_modules/.bin/mcp-remote"),
    args: [url],
    env: {
      ...process.env, PATH: `${bin}:${process.env.PATH}`, BROWSER: browser,
      MCP_REMOTE_CONFIG_DIR: config, HOME: config,
    },
    stderr: "pipe",
  });
  transport.stderr?.on("data", (chunk) => {
    stderr += chunk.toString();
  });
  const client = new Client({ name: "e2e-through-mcp-remote", version: "1.0.0" });
  const opened = () => (existsSync(log) ? readFileSync(log, "utf8") : "");
  try {
    await withTimeout(client.connect(transport), 60000, "mcp-remote connect");
    const report = JSON.parse(opened().trim().split("\n").at(-1) || "{}");
    check("mcp-remote: it opened the browser at this issuer's /authorize; all tools kept, the callback took the code",
      report.opened?.startsWith(`${issuer}/authorize?`) && report.code && report.iss === issuer
        && report.offered === 20 && report.callback >= 200 && report.callback < 400,
      opened());
    const names = (await withTimeout(client.listTools(), 15000, "tools/list")).tools.map((t) => t.name);
    check("mcp-remote: tools/list through it names all 20 tools of the key", names.length === 20, names);
    const result = await withTimeout(
      client.callTool({ name: "fetch_jobs", arguments: { limit: 2 } }), 15000, "tools/call");
    check("mcp-remote: fetch_jobs through it is answered", !result.isError && result.structuredContent?.count === 2,
      JSON.stringify(result));
  } catch (e) {
    check("mcp-remote: the OAuth flow completes and fetch_jobs is answered", false,
      `${e?.stack ?? e}\nopener: ${opened()}\nmcp-remote: ${stderr.slice(-1500)}`);
  } finally {
    await client.close().catch(() => {});
    // close() ends the child; make sure of it.
    if (transport.pid) {
      try {
        process.kill(transport.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

// --- c. The consent page in headless Chromium -----------------------------------

/// A loopback server: /callback records the redirect it receives (the client's
/// redirect URI); /attack.html is a page of another origin that posts a forged
/// consent to the issuer.
async function localServer() {
  const callbacks = [];
  const server = createServer((req, res) => {
    const u = new URL(req.url, "http://x");
    if (u.pathname === "/callback") {
      callbacks.push(u.searchParams);
      res.writeHead(200, { "Content-Type": "text/plain" }).end("landed");
    } else if (u.pathname === "/attack.html") {
      const field = (k, v) => `<input type=hidden name=${k} value="${v}">`;
      res.writeHead(200, { "Content-Type": "text/html" }).end(
        `<!doctype html><form method=post action="${issuer}/authorize">` +
          field("request", u.searchParams.get("request")) + field("csrf", base64url(randomBytes(24))) +
          field("action", "allow") + field("tool", "fetch_jobs") +
          `</form><script>document.forms[0].submit()</script>`);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, callbacks, port: server.address().port };
}

async function register(redirectUri) {
  const response = await fetch(`${issuer}/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      client_name: "e2e Chromium", redirect_uris: [redirectUri], grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"], token_endpoint_auth_method: "none",
    }),
  });
  const body = await response.json();
  if (response.status !== 201 || !body.client_id) throw new Error(`POST /register: ${response.status} ${JSON.stringify(body)}`);
  return body.client_id;
}

function authorizeUrl(clientId, redirectUri, challenge, state) {
  return `${issuer}/authorize?` + new URLSearchParams({
    response_type: "code", client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge,
    code_challenge_method: "S256", state, resource: `${issuer}/mcp`, scope: "mcp",
  });
}

/// Submits the form holding `selector` by clicking it; answers the new page's response.
async function click(page, selector) {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
  return response;
}

async function chromium() {
  if (!existsSync("/usr/bin/chromium")) {
    check("Chromium: /usr/bin/chromium is installed", false, "missing");
    return;
  }
  const local = await localServer();
  const redirectUri = `http://127.0.0.1:${local.port}/callback`;
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const clientId = await register(redirectUri);
    const verifier = base64url(randomBytes(32));
    const challenge = base64url(createHash("sha256").update(verifier).digest());
    const state = base64url(randomBytes(16));
    const page = await browser.newPage();
    const first = await page.goto(authorizeUrl(clientId, redirectUri, challenge, state), { waitUntil: "load" });
    const headers = first.headers();
    check("Chromium: the consent page is 200 with the key field",
      first.status() === 200 && (await page.$("input[type=password]#api_key")) !== null, first.status());
    check("Chromium: the consent page forbids framing (CSP frame-ancestors 'none', X-Frame-Options DENY)",
      /frame-ancestors 'none'/.test(headers["content-security-policy"] ?? "") && headers["x-frame-options"] === "DENY",
      JSON.stringify(headers));

    await page.type("#api_key", WRONG_KEY);
    const wrong = await click(page, "form:has(#api_key) button[type=submit]");
    check("Chromium: a wrong key is answered 401 with 'Invalid or disabled MCP key', the form again",
      wrong.status() === 401 && (await page.content()).includes("Invalid or disabled MCP key")
        && (await page.$("#api_key")) !== null, wrong.status());

    await page.type("#api_key", FULL_KEY);
    const right = await click(page, "form:has(#api_key) button[type=submit]");
    const boxes = await page.$$eval("input[type=checkbox][name=tool]", (els) => els.map((e) => [e.value, e.checked]));
    const text = await page.evaluate(() => document.body.innerText);
    check("Chromium: the right key shows the tools page: one ticked checkbox per tool (20)",
      right.status() === 200 && boxes.length === 20 && boxes.every(([, on]) => on), JSON.stringify(boxes));
    check("Chromium: ...naming the tenant and the key",
      text.includes("e2e-shop-floor") && text.includes(process.env.E2E_TENANT ?? "e2e00000-") && text.includes("E2E full"),
      text);

    for (const [name] of boxes.filter(([name]) => name !== "fetch_jobs")) {
      await page.click(`input[type=checkbox][value="${name}"]`);
    }
    const kept = await page.$$eval("input[type=checkbox][name=tool]:checked", (els) => els.map((e) => e.value));
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "oauth-consent.png"), fullPage: true });
    check("Chromium: all but fetch_jobs unticked (screenshot oauth-consent.png)", sorted(kept) === "fetch_jobs", kept);

    await click(page, "button[name=action][value=allow]");
    const landed = new URL(page.url());
    const query = local.callbacks.at(-1);
    check("Chromium: Allow lands on the redirect URI with a code, the state sent and iss",
      page.url().startsWith(redirectUri) && landed.searchParams.get("code")?.startsWith("mcp_ac_")
        && landed.searchParams.get("state") === state && landed.searchParams.get("iss") === issuer
        && query?.get("code") === landed.searchParams.get("code"),
      page.url());

    const token = await fetch(`${issuer}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code: landed.searchParams.get("code") ?? "", code_verifier: verifier,
        redirect_uri: redirectUri, client_id: clientId, resource: `${issuer}/mcp`,
      }),
    });
    const tokens = await token.json();
    check("Chromium: the code and verifier are exchanged at /token for an mcp_at_ token",
      token.status === 200 && tokens.access_token?.startsWith("mcp_at_") && tokens.token_type?.toLowerCase() === "bearer",
      JSON.stringify(tokens));
    const listed = await listTools(tokens.access_token ?? "");
    check("Chromium: tools/list with that token names only fetch_jobs",
      listed.status === 200 && sorted(listed.names ?? []) === "fetch_jobs", `${listed.status} ${listed.text.slice(0, 300)}`);

    // CSRF: the user is signed in on a real consent (at the tools step), and a page
    // of another origin posts "allow" for that very sign-in, with a guessed token.
    const state2 = base64url(randomBytes(16));
    await page.goto(authorizeUrl(clientId, redirectUri, challenge, state2), { waitUntil: "load" });
    const request = await page.$eval("input[name=request]", (e) => e.value);
    await page.type("#api_key", FULL_KEY);
    await click(page, "form:has(#api_key) button[type=submit]");
    const before = local.callbacks.length;
    const attacker = await browser.newPage();
    const posted = attacker.waitForResponse(
      (r) => r.url().startsWith(`${issuer}/authorize`) && r.request().method() === "POST", { timeout: 10000 });
    await attacker.goto(`http://localhost:${local.port}/attack.html?request=${request}`);
    const forged = await posted.catch(() => undefined);
    // Had the forgery worked, a redirect to the client would follow.
    await attacker.waitForNetworkIdle({ idleTime: 300, timeout: 5000 }).catch(() => {});
    check("Chromium: a forged consent posted from another origin is refused (403), no code reaches the redirect URI",
      forged?.url().startsWith(`${issuer}/authorize`) && forged.status() === 403
        && !attacker.url().startsWith(redirectUri) && local.callbacks.length === before,
      `${forged?.status()} ${attacker.url()} ${(await attacker.content()).slice(0, 300)}`);

    // The same forgery without an Origin (no browser sends none, a script may):
    // it passes the gate, and then the CSRF token and cookie must both match.
    const signIn = await openConsent(authorizeUrl(clientId, redirectUri, challenge, base64url(randomBytes(16))));
    const forge = (csrf, cookie) => fetch(signIn.action, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...(cookie ? { Cookie: cookie } : {}) },
      body: new URLSearchParams({ request: signIn.request, csrf, action: "check", api_key: FULL_KEY }),
      redirect: "manual",
    });
    const guessed = await forge(base64url(randomBytes(24)), signIn.cookie);
    check("consent form: a guessed csrf (with the real cookie) is 403, the CSRF token does not match",
      guessed.status === 403 && /CSRF token does not match/.test(await guessed.text()), guessed.status);
    const noCookie = await forge(signIn.csrf, null);
    check("consent form: the real csrf without its cookie is 403 as well",
      noCookie.status === 403 && /CSRF token does not match/.test(await noCookie.text()), noCookie.status);
  } finally {
    await browser.close();
    local.server.close();
  }
}

for (const [part, run] of [["TypeScript SDK", typescriptSdk], ["mcp-remote", mcpRemote], ["Chromium", chromium]]) {
  try {
    await run();
  } catch (e) {
    check(`${part}: ran to the end`, false, e?.stack ?? e);
  }
}
finish("e2e oauth node");
