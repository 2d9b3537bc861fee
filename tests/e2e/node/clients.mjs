// Independent clients against `mcp-auth serve --http` (issue 19): the official
// TypeScript SDK, and mcp-remote, the bridge of the README's Claude Desktop setup.
// Run by scripts/e2e.sh with its environment and the URL of a running server as the
// first argument. Prints one `ok - ...` / `not ok - ...` line per check.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checker, withTimeout } from "./tap.mjs";

const url = process.argv[2];
const FULL_KEY = process.env.E2E_FULL_KEY;
const RO_KEY = process.env.E2E_RO_KEY;
const WRONG_KEY = FULL_KEY.slice(0, -6) + "000000";
const here = new URL(".", import.meta.url).pathname;
const { check, finish } = checker("node");

async function sdk(key) {
  const client = new Client({ name: "e2e-typescript-sdk", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await withTimeout(client.connect(transport), 15000, "connect");
  return client;
}

async function typescriptSdk() {
  const client = await sdk(FULL_KEY);
  const tools = (await client.listTools()).tools;
  check("TypeScript SDK: 20 tools listed for the full key", tools.length === 20, tools.length);
  const result = await client.callTool({ name: "fetch_jobs", arguments: { limit: 2 } });
  check("TypeScript SDK: fetch_jobs answers two jobs",
    !result.isError && result.structuredContent?.count === 2, JSON.stringify(result));
  let error;
  try {
    await client.callTool({ name: "fetch_jobs", arguments: {}, _meta: { apiKey: WRONG_KEY } });
  } catch (e) {
    error = e;
  }
  check("TypeScript SDK: a wrong _meta.apiKey is a JSON-RPC -32000 naming the key, the session goes on",
    error?.code === -32000 && /Invalid or disabled MCP key/.test(error.message), error);
  const again = await client.callTool({ name: "fetch_parts", arguments: { limit: 1 } });
  check("TypeScript SDK: ...and the next call is answered", !again.isError, JSON.stringify(again));
  try {
    await client.callTool({ name: "create_job", arguments: { customer: "x" }, _meta: { apiKey: RO_KEY } });
    error = undefined;
  } catch (e) {
    error = e;
  }
  check("TypeScript SDK: the read-only key may not create a job: -32000, permission_error",
    error?.code === -32000 && error?.data?.type === "permission_error", error);
  await client.close();

  error = undefined;
  try {
    await sdk(WRONG_KEY);
  } catch (e) {
    error = e;
  }
  check("TypeScript SDK: a wrong bearer fails at connect, naming the key",
    error !== undefined && /Invalid or disabled MCP key/.test(String(error)),
    error);
}

/// mcp-remote as Claude Desktop starts it (README), driven over stdio by the SDK.
async function mcpRemote(key) {
  const config = mkdtempSync(join(tmpdir(), "mcp-remote-"));
  let stderr = "";
  const transport = new StdioClientTransport({
    command: join(here, "node_modules/.bin/mcp-remote"),
    args: [url, "--header", "Authorization:${AUTH}", "--allow-http", "--transport", "http-only"],
    env: { ...process.env, AUTH: `Bearer ${key}`, MCP_REMOTE_CONFIG_DIR: config, HOME: config },
    stderr: "pipe",
  });
  transport.stderr?.on("data", (chunk) => {
    stderr += chunk.toString();
  });
  const client = new Client({ name: "e2e-through-mcp-remote", version: "1.0.0" });
  try {
    await withTimeout(client.connect(transport), 30000, "mcp-remote connect");
    const result = await withTimeout(
      client.callTool({ name: "fetch_jobs", arguments: { limit: 2 } }), 15000, "tools/call");
    return { result, stderr };
  } catch (error) {
    return { error, stderr };
  } finally {
    await client.close().catch(() => {});
  }
}

async function remote() {
  const good = await mcpRemote(FULL_KEY);
  check("mcp-remote (README's Claude Desktop setup): a call through it is answered",
    good.result && !good.result.isError && good.result.structuredContent?.count === 2,
    good.error ?? JSON.stringify(good.result) + good.stderr.slice(-400));
  const bad = await mcpRemote(WRONG_KEY);
  const said = String(bad.error ?? "") + "\n" + bad.stderr;
  check("mcp-remote with a wrong key: what it prints names the key as the problem",
    bad.error !== undefined && /Invalid or disabled MCP key/.test(said),
    said.slice(-1200));
}

try {
  await typescriptSdk();
  await remote();
} catch (e) {
  check("the node clients ran", false, e?.stack ?? e);
}
finish("e2e node");
