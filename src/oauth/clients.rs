//! The clients: registered ones (RFC 7591), capped per source address, and those a
//! Client ID Metadata Document describes (the server fetched it; client_id is its URL).

use super::{error, ok};
use crate::spi::{self, col, Statement, TEXT};
use mcp_auth_core::token;
use pgrx::datum::Inet;
use pgrx::prelude::*;
use pgrx::{JsonB, PgBuiltInOids, PgOid};
use serde_json::json;

pub(super) const TEXT_ARRAY: PgOid = PgOid::BuiltIn(PgBuiltInOids::TEXTARRAYOID);
const INET: PgOid = PgOid::BuiltIn(PgBuiltInOids::INETOID);

/// Whether a name and redirect URIs may describe a client; the error answer if not.
fn problem(name: &str, redirect_uris: &[String]) -> Option<JsonB> {
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(token::is_hidden) {
        return Some(error(
            "invalid_client_metadata",
            "client_name: must be 1 to 200 characters, without control or direction-changing characters",
        ));
    }
    if redirect_uris.is_empty()
        || redirect_uris.len() > 10
        || redirect_uris.iter().map(String::len).sum::<usize>() > 4096
    {
        return Some(error(
            "invalid_redirect_uri",
            "redirect_uris: must list 1 to 10 URIs, 4096 characters in all",
        ));
    }
    for uri in redirect_uris {
        if let Some(rule) = token::redirect_uri_problem(uri) {
            return Some(error(
                "invalid_redirect_uri",
                format!("redirect_uris: {rule}"),
            ));
        }
    }
    None
}

// Registrations an hour old that no token names are forgotten, a hundred at a
// time as others register (rows held elsewhere passed by). The caps: per address
// in the last day, and from every address together in the last hour.
const FORGET: Statement = Statement {
    sql: "DELETE FROM @s.mcp_oauth_clients WHERE client_id IN (
              SELECT c.client_id FROM @s.mcp_oauth_clients c
               WHERE c.kind = 'registered'
                 AND c.created_at <= pg_catalog.now() - '1 hour'::pg_catalog.interval
                 AND NOT EXISTS (SELECT FROM @s.mcp_oauth_tokens t WHERE t.client_id = c.client_id)
               LIMIT 100 FOR UPDATE SKIP LOCKED)",
    args: &[],
    writes: true,
};
const RECENT: Statement = Statement {
    sql: "SELECT pg_catalog.count(*) FILTER (WHERE registered_from = $1)::pg_catalog.int4,
                 pg_catalog.count(*) FILTER (
                     WHERE created_at > pg_catalog.now() - '1 hour'::pg_catalog.interval)::pg_catalog.int4
            FROM @s.mcp_oauth_clients
           WHERE kind = 'registered' AND created_at > pg_catalog.now() - '1 day'::pg_catalog.interval",
    args: &[INET],
    writes: false,
};
/// Registrations in an hour from every address together.
const MAX_PER_HOUR: i32 = 10_000;
const REGISTER: Statement = Statement {
    sql: "INSERT INTO @s.mcp_oauth_clients (client_id, client_name, redirect_uris, kind, registered_from)
          VALUES ($1, $2, $3, 'registered', $4)
          RETURNING pg_catalog.date_part('epoch', created_at)::pg_catalog.int8",
    args: &[TEXT, TEXT, TEXT_ARRAY, INET],
    writes: true,
};

/// Registers a public client (RFC 7591): at most `p_max_per_address` a day from one
/// address. Answers the registration, or an OAuth error.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_register_client(
    p_client_name: Option<&str>,
    p_redirect_uris: Option<Vec<String>>,
    p_from: default!(Option<Inet>, "NULL"),
    p_max_per_address: default!(i32, 20),
) -> JsonB {
    super::bounded(|| {
        let name = p_client_name.unwrap_or("").trim().to_string();
        let uris = p_redirect_uris.unwrap_or_default();
        if let Some(answer) = problem(&name, &uris) {
            return answer;
        }
        let (here, everywhere) = spi::first(&RECENT, &[p_from.clone().into()], |r| {
            Some((col::<i32>(r, 1)?, col::<i32>(r, 2)?))
        })
        .unwrap_or((0, 0));
        if p_from.is_some() && here >= p_max_per_address {
            return error(
                "too_many_registrations",
                format!(
                    "at most {p_max_per_address} clients may register from one address in a day"
                ),
            );
        }
        if everywhere >= MAX_PER_HOUR {
            return error(
                "too_many_registrations",
                format!("at most {MAX_PER_HOUR} clients may register in an hour; try again later"),
            );
        }
        // Only a registration that will be made pays for the clean-up.
        spi::run(&FORGET, &[], |_| ());
        let client_id = token::client_id();
        let issued: Option<i64> = spi::one(
            &REGISTER,
            &[
                client_id.as_str().into(),
                name.as_str().into(),
                uris.clone().into(),
                p_from.into(),
            ],
        );
        ok(json!({
            "client_id": client_id,
            "client_id_issued_at": issued,
            "client_name": name,
            "redirect_uris": uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
    })
}

const DESCRIBE: Statement = Statement {
    sql:
        "INSERT INTO @s.mcp_oauth_clients (client_id, client_name, redirect_uris, kind, fetched_at)
          VALUES ($1, $2, $3, 'metadata', pg_catalog.now())
          ON CONFLICT (client_id) DO UPDATE
             SET client_name = EXCLUDED.client_name, redirect_uris = EXCLUDED.redirect_uris,
                 fetched_at = EXCLUDED.fetched_at
           WHERE @s.mcp_oauth_clients.kind = 'metadata'
          RETURNING client_id",
    args: &[TEXT, TEXT, TEXT_ARRAY],
    writes: true,
};

/// Records what a Client ID Metadata Document says (the server fetched it from
/// `p_client_id`, an https URL). Answers the client, or an OAuth error.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_describe_client(
    p_client_id: Option<&str>,
    p_client_name: Option<&str>,
    p_redirect_uris: Option<Vec<String>>,
) -> JsonB {
    super::bounded(|| {
        let client_id = p_client_id.unwrap_or("");
        if !(client_id.starts_with("https://") || client_id.starts_with("http://"))
            || client_id.len() > 2000
        {
            return error(
                "invalid_client",
                "client_id: must be the metadata document's URL",
            );
        }
        let name = p_client_name.unwrap_or("").trim().to_string();
        let uris = p_redirect_uris.unwrap_or_default();
        if let Some(answer) = problem(&name, &uris) {
            return answer;
        }
        let args = [client_id.into(), name.as_str().into(), uris.clone().into()];
        if spi::one::<String>(&DESCRIBE, &args).is_none() {
            return error(
                "invalid_client",
                "client_id: already names a registered client",
            );
        }
        ok(json!({"client_id": client_id, "client_name": name, "redirect_uris": uris}))
    })
}

const CLIENT: Statement = Statement {
    sql: "SELECT client_name, redirect_uris, kind,
                 pg_catalog.date_part('epoch', pg_catalog.now() - fetched_at)::pg_catalog.int4
            FROM @s.mcp_oauth_clients WHERE client_id = $1",
    args: &[TEXT],
    writes: false,
};

/// A known client: its name, redirect URIs, kind and (for a metadata document) the
/// seconds since it was read. NULL when unknown.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_client(p_client_id: Option<&str>) -> Option<JsonB> {
    let id = p_client_id?;
    spi::first(&CLIENT, &[id.into()], |r| {
        Some(JsonB(json!({
            "client_id": id,
            "client_name": col::<String>(r, 1)?,
            "redirect_uris": col::<Vec<String>>(r, 2)?,
            "kind": col::<String>(r, 3)?,
            "fetched_seconds_ago": col::<i32>(r, 4),
        })))
    })
}

const REVOKE_CLIENT: Statement = Statement {
    sql: "UPDATE @s.mcp_oauth_tokens SET revoked_at = pg_catalog.now()
           WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > pg_catalog.now()
             AND ($2::pg_catalog.uuid IS NULL OR tenant_id = $2)
          RETURNING kind <> 'code'",
    args: &[TEXT, crate::spi::UUID],
    writes: true,
};

/// Ends every token a client holds for the caller's tenant (every tenant for the
/// DBA): its next request is refused, and it must ask the user again. Answers how
/// many tokens were live.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_mcp_oauth_client(p_client_id: Option<&str>) -> i32 {
    super::bounded(|| {
        let id = p_client_id.unwrap_or_else(|| crate::errors::required("p_client_id"));
        let tenant = crate::access::managed_tenant();
        // Codes too; and again while a pass finds rows: a refresh that was running when
        // the first pass waited for its row committed new tokens that pass could not
        // see, and the next statement sees them.
        let mut live = 0;
        for _ in 0..3 {
            let (rows, tokens) = spi::run(&REVOKE_CLIENT, &[id.into(), tenant.into()], |t| {
                let rows = t.len();
                let tokens = t
                    .filter_map(|r| r.get::<bool>(1).ok().flatten())
                    .filter(|k| *k)
                    .count();
                (rows, tokens)
            });
            live += tokens as i32;
            if rows == 0 {
                break;
            }
        }
        live
    })
}
