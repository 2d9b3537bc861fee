// The user's "browser" for OAuth tests without a real one: plain fetch through the
// consent page of `mcp-auth serve --oauth-issuer` (GET the page, POST the key, POST
// the choice), keeping the consent cookie as a browser would.
//
// Imported by oauth.mjs for `consent()`; run as `node opener.mjs URL` it is the
// browser mcp-remote opens (through $BROWSER / xdg-open): it consents with
// $E2E_FULL_KEY keeping every tool, then GETs the redirect (mcp-remote's callback
// server) and prints one JSON line saying what happened.

import { pathToFileURL } from "node:url";

/// The value of a hidden input of a consent page.
function hidden(html, name) {
  return html.match(new RegExp(`name=${name} value="([^"]*)"`))?.[1];
}

function post(action, cookie, fields) {
  const body = new URLSearchParams();
  for (const [k, v] of fields) body.append(k, v);
  return fetch(action, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: cookie },
    body,
    redirect: "manual",
  });
}

/// Opens the consent page at `authorizeUrl`; answers what a test needs to go on
/// or to post forms of its own: the page, the sign-in's request id, CSRF token
/// and cookie, and where the forms post.
export async function openConsent(authorizeUrl) {
  const page = await fetch(authorizeUrl, { redirect: "manual" });
  const html = await page.text();
  const request = hidden(html, "request");
  const csrf = hidden(html, "csrf");
  // Only `name=value` goes back, as a browser sends it.
  const cookie = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  if (page.status !== 200 || !request || !csrf || !cookie) {
    throw new Error(`GET ${authorizeUrl}: ${page.status}, no consent form: ${html.slice(0, 400)}`);
  }
  return { page, html, request, csrf, cookie, action: new URL("/authorize", authorizeUrl).href };
}

/// Signs in at `authorizeUrl` with `key` and allows the tools named in `keep`
/// (every tool offered when `keep` is null). Answers the tools offered and the
/// 303 redirect's Location.
export async function consent(authorizeUrl, key, keep = null) {
  const { request, csrf, cookie, action } = await openConsent(authorizeUrl);
  const checked = await post(action, cookie, [["request", request], ["csrf", csrf], ["action", "check"], ["api_key", key]]);
  const tools_html = await checked.text();
  const offered = [...tools_html.matchAll(/<input type=checkbox name=tool value="([^"]*)" checked>/g)].map((m) => m[1]);
  if (checked.status !== 200 || offered.length === 0) {
    throw new Error(`POST the key: ${checked.status}, no tools offered: ${tools_html.slice(0, 400)}`);
  }
  const kept = keep ?? offered;
  // The tools page names the sign-in kept since the key was accepted.
  const kept_request = hidden(tools_html, "request") ?? request;
  const allowed = await post(action, cookie, [
    ["request", kept_request], ["csrf", csrf], ["action", "allow"], ...kept.map((t) => ["tool", t]),
  ]);
  const location = allowed.headers.get("location");
  if (allowed.status !== 303 || !location) {
    throw new Error(`POST allow: ${allowed.status}, no redirect: ${(await allowed.text()).slice(0, 400)}`);
  }
  return { offered, location: new URL(location) };
}

// As mcp-remote's browser: consent, then deliver the code to its callback server.
if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const authorizeUrl = process.argv[2];
  const report = { opened: authorizeUrl };
  try {
    const { offered, location } = await consent(authorizeUrl, process.env.E2E_FULL_KEY);
    report.offered = offered.length;
    report.code = location.searchParams.has("code");
    report.iss = location.searchParams.get("iss");
    const callback = await fetch(location, { redirect: "manual" });
    report.callback = callback.status;
    report.callback_says = (await callback.text()).trim().slice(0, 200);
  } catch (e) {
    report.error = String(e?.stack ?? e);
  }
  console.log(JSON.stringify(report));
  process.exit(report.error ? 1 : 0);
}
