//! What the consent page asks of the database: what a key may grant (its tenant and
//! tools), and the authorization code it grants a client.

use super::clients::TEXT_ARRAY;
use super::{error, ok, CODE_SECONDS};
use crate::keys::validate::{self, Authenticated};
use crate::spi::{self, Statement, INT4, TEXT, UUID};
use crate::tools::registry;
use mcp_auth_core::envelope::INVALID_KEY;
use mcp_auth_core::{key, token};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

/// A key (never a token) that authenticates; the OAuth error for any other.
fn key_of(api_key: Option<&str>) -> Result<Authenticated, JsonB> {
    let api_key = api_key.unwrap_or("");
    if key::parse(api_key).is_err() {
        return Err(error("access_denied", INVALID_KEY));
    }
    validate::authenticate(api_key).map_err(|_| error("access_denied", INVALID_KEY))
}

/// The tools a key may call, as the registry lists them.
fn tools_of(k: &Authenticated) -> Vec<Value> {
    registry::all()
        .into_iter()
        .filter(|t| k.allows(&t.name))
        .map(
            |t| json!({"name": t.name, "title": t.title.clone().unwrap_or_else(|| t.name.clone())}),
        )
        .collect()
}

const SERVER_NAME: Statement = Statement {
    sql: "SELECT server_name FROM @s.mcp_server_config WHERE tenant_id = $1",
    args: &[UUID],
    writes: false,
};

/// What the key `p_api_key` may grant: its tenant (id and configured server name),
/// its name and display prefix, and its tools. An OAuth `access_denied` with the
/// guide's message for any key that does not authenticate.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_consent(p_api_key: Option<&str>) -> JsonB {
    let k = match key_of(p_api_key) {
        Ok(k) => k,
        Err(answer) => return answer,
    };
    let server_name: Option<String> = spi::one(&SERVER_NAME, &[k.key.tenant_id.into()]);
    ok(json!({
        "tenant_id": k.key.tenant_id.to_string(),
        "server_name": server_name,
        "key_name": k.key.name,
        "key_prefix": k.key.key_prefix,
        "tools": tools_of(&k),
    }))
}

const CLIENT_REDIRECTS: Statement = Statement {
    sql: "SELECT redirect_uris FROM @s.mcp_oauth_clients WHERE client_id = $1",
    args: &[TEXT],
    writes: false,
};

const GRANT: Statement = Statement {
    sql: "INSERT INTO @s.mcp_oauth_tokens
              (digest, kind, family, tenant_id, key_id, client_id, resource, tools,
               redirect_uri, code_challenge, expires_at)
          VALUES ($1, 'code', pg_catalog.gen_random_uuid(), $2, $3, $4, $5, $6, $7, $8,
                  pg_catalog.now() + pg_catalog.make_interval(secs => $9))",
    args: &[TEXT, UUID, UUID, TEXT, TEXT, TEXT_ARRAY, TEXT, TEXT, INT4],
    writes: true,
};

/// The user consented with `p_api_key`: an authorization code (60 seconds, once)
/// for `p_client_id` at `p_redirect_uri`, bound to the PKCE challenge, the resource
/// and the tools chosen (NULL: every tool the key may call).
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_authorize(
    p_api_key: Option<&str>,
    p_client_id: Option<&str>,
    p_redirect_uri: Option<&str>,
    p_code_challenge: Option<&str>,
    p_resource: Option<&str>,
    p_tools: default!(Option<Vec<String>>, "NULL"),
) -> JsonB {
    let k = match key_of(p_api_key) {
        Ok(k) => k,
        Err(answer) => return answer,
    };
    let (client_id, redirect_uri) = (p_client_id.unwrap_or(""), p_redirect_uri.unwrap_or(""));
    let redirects: Option<Vec<String>> = spi::one(&CLIENT_REDIRECTS, &[client_id.into()]);
    let Some(redirects) = redirects else {
        return error("invalid_client", "client_id: no such client");
    };
    if !redirects.iter().any(|r| r == redirect_uri) {
        return error(
            "invalid_request",
            "redirect_uri: must be one the client registered, exactly",
        );
    }
    let challenge = p_code_challenge.unwrap_or("");
    if !token::is_challenge(challenge) {
        return error(
            "invalid_request",
            "code_challenge: must be an S256 challenge (43 base64url characters)",
        );
    }
    let resource = p_resource.unwrap_or("");
    if resource.is_empty() || resource.len() > 2000 {
        return error("invalid_target", "resource: must name the MCP server's URL");
    }
    let tools = match p_tools {
        None => None,
        Some(chosen) => {
            let mut kept: Vec<String> = Vec::new();
            for t in chosen {
                if !k.allows(&t) || registry::find(&t).is_none() {
                    return error(
                        "invalid_scope",
                        format!("tools: {t} is not a tool this key may call"),
                    );
                }
                if !kept.contains(&t) {
                    kept.push(t);
                }
            }
            if kept.is_empty() {
                return error("invalid_scope", "tools: choose at least one tool");
            }
            Some(kept)
        }
    };
    let code = token::generate(token::Kind::Code);
    spi::run(
        &GRANT,
        &[
            token::digest(&code).into(),
            k.key.tenant_id.into(),
            k.key.id.into(),
            client_id.into(),
            resource.into(),
            tools.into(),
            redirect_uri.into(),
            challenge.into(),
            CODE_SECONDS.into(),
        ],
        |_| (),
    );
    ok(json!({ "code": code }))
}
