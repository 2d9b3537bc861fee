//! The token endpoint's work: an authorization code exchanged (PKCE S256), a refresh
//! token rotated, a token revoked (RFC 7009). A code or refresh token is good once
//! (it is spent only by a grant that succeeds); one that comes back revokes its
//! whole family, since one of the two presenters stole it. Every grant checks the key again: a key that is no longer active (or
//! was rotated) grants nothing more.

use super::clients::TEXT_ARRAY;
use super::{error, ok, ACCESS_SECONDS, REFRESH_SECONDS};
use crate::keys::status;
use crate::spi::{self, col, Statement, INT4, TEXT, UUID};
use mcp_auth_core::token::{self, Kind};
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::json;

// The code or refresh token, locked for this grant; a row held elsewhere (a
// concurrent grant, an admin's open revoke) is passed by, never waited for.
const FIND: Statement = Statement {
    sql: "SELECT used_at IS NOT NULL, revoked_at IS NOT NULL, expires_at <= pg_catalog.now(),
                 family, tenant_id, key_id, client_id, resource, tools, redirect_uri, code_challenge
            FROM @s.mcp_oauth_tokens WHERE digest = $1 AND kind = $2
             FOR UPDATE SKIP LOCKED",
    args: &[TEXT, TEXT],
    writes: true,
};
// Whether a row FIND passed by is there at all.
const HELD: Statement = Statement {
    sql: "SELECT true FROM @s.mcp_oauth_tokens WHERE digest = $1 AND kind = $2",
    args: &[TEXT, TEXT],
    writes: false,
};
// The grant succeeded: used; a used refresh token is kept only a day more (for
// reuse detection), not to its own expiry.
const MARK: Statement = Statement {
    sql: "UPDATE @s.mcp_oauth_tokens
             SET used_at = pg_catalog.now(),
                 expires_at = LEAST(expires_at, pg_catalog.now() + '1 day'::pg_catalog.interval)
           WHERE digest = $1 AND tenant_id = $2",
    args: &[TEXT, UUID],
    writes: true,
};

struct Taken {
    reused: bool,
    revoked: bool,
    expired: bool,
    family: Uuid,
    tenant_id: Uuid,
    key_id: Uuid,
    client_id: String,
    resource: String,
    tools: Option<Vec<String>>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
}

/// What a secret is, locked; `Err(())` when another transaction holds it.
fn take(digest: &str, kind: Kind) -> Result<Option<Taken>, ()> {
    let args = [digest.into(), kind.as_str().into()];
    let found = spi::first(&FIND, &args, |r| {
        Some(Taken {
            reused: col(r, 1)?,
            revoked: col(r, 2)?,
            expired: col(r, 3)?,
            family: col(r, 4)?,
            tenant_id: col(r, 5)?,
            key_id: col(r, 6)?,
            client_id: col(r, 7)?,
            resource: col(r, 8)?,
            tools: col(r, 9),
            redirect_uri: col(r, 10),
            code_challenge: col(r, 11),
        })
    });
    match found {
        Some(t) => Ok(Some(t)),
        None if spi::one::<bool>(&HELD, &args).is_some() => Err(()),
        None => Ok(None),
    }
}

const REVOKE_FAMILY: Statement = Statement {
    sql: "UPDATE @s.mcp_oauth_tokens SET revoked_at = pg_catalog.now()
           WHERE family = $1 AND revoked_at IS NULL",
    args: &[UUID],
    writes: true,
};

const KEY_FACTS: Statement = Statement {
    sql: "SELECT revoked_at IS NOT NULL, enabled, COALESCE(expires_at <= pg_catalog.now(), false),
                 replaced_by IS NOT NULL
            FROM @s.mcp_authentication_keys WHERE id = $1",
    args: &[UUID],
    writes: false,
};

/// Whether the key is active and not rotated (a rotated key's tokens end at once).
fn key_active(key_id: Uuid) -> bool {
    spi::first(&KEY_FACTS, &[key_id.into()], |r| {
        let replaced: bool = col(r, 4)?;
        Some(
            !replaced && status::of(col(r, 1)?, col(r, 2)?, col(r, 3)?, replaced) == status::ACTIVE,
        )
    })
    .unwrap_or(false)
}

const ISSUE: Statement = Statement {
    sql: "INSERT INTO @s.mcp_oauth_tokens
              (digest, kind, family, tenant_id, key_id, client_id, resource, tools, expires_at)
          VALUES ($1, 'access', $3, $4, $5, $6, $7, $8, pg_catalog.now() + pg_catalog.make_interval(secs => $9)),
                 ($2, 'refresh', $3, $4, $5, $6, $7, $8, pg_catalog.now() + pg_catalog.make_interval(secs => $10))",
    args: &[TEXT, TEXT, UUID, UUID, UUID, TEXT, TEXT, TEXT_ARRAY, INT4, INT4],
    writes: true,
};

// Rows a day past their expiry go, a few at a time, as new ones come.
const CLEAN: Statement = Statement {
    // Rows someone holds (an admin's open transaction) are skipped, never waited for.
    sql: "DELETE FROM @s.mcp_oauth_tokens WHERE (digest, tenant_id) IN (
              SELECT digest, tenant_id FROM @s.mcp_oauth_tokens
               WHERE expires_at < pg_catalog.now() - '1 day'::pg_catalog.interval
               LIMIT 100 FOR UPDATE SKIP LOCKED)",
    args: &[],
    writes: true,
};

/// A new access and refresh token in the family of `t`.
fn issue(t: &Taken) -> JsonB {
    spi::run(&CLEAN, &[], |_| ());
    let (access, refresh) = (
        token::generate(Kind::Access),
        token::generate(Kind::Refresh),
    );
    spi::run(
        &ISSUE,
        &[
            token::digest(&access).into(),
            token::digest(&refresh).into(),
            t.family.into(),
            t.tenant_id.into(),
            t.key_id.into(),
            t.client_id.as_str().into(),
            t.resource.as_str().into(),
            t.tools.clone().into(),
            ACCESS_SECONDS.into(),
            REFRESH_SECONDS.into(),
        ],
        |_| (),
    );
    ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_SECONDS,
        "refresh_token": refresh,
        "scope": "mcp",
    }))
}

/// The token endpoint (RFC 6749 §4.1.3 and §6): `p_grant_type` is
/// `authorization_code` (with the code as `p_secret`, `p_code_verifier` and
/// `p_redirect_uri`) or `refresh_token` (the refresh token as `p_secret`). The client
/// and, when given, the resource must be the ones the grant was made for. Answers
/// the tokens, or an OAuth error.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_token(
    p_grant_type: Option<&str>,
    p_secret: Option<&str>,
    p_client_id: Option<&str>,
    p_code_verifier: default!(Option<&str>, "NULL"),
    p_redirect_uri: default!(Option<&str>, "NULL"),
    p_resource: default!(Option<&str>, "NULL"),
) -> JsonB {
    super::bounded(|| {
        let kind = match p_grant_type {
            Some("authorization_code") => Kind::Code,
            Some("refresh_token") => Kind::Refresh,
            _ => {
                return error(
                    "unsupported_grant_type",
                    "grant_type: must be authorization_code or refresh_token",
                )
            }
        };
        let what = if kind == Kind::Code {
            "code"
        } else {
            "refresh_token"
        };
        let secret = p_secret.unwrap_or("");
        if token::parse(secret) != Some(kind) {
            return error("invalid_grant", format!("{what}: unknown"));
        }
        let digest = token::digest(secret);
        let t = match take(&digest, kind) {
            Ok(Some(t)) => t,
            Ok(None) => return error("invalid_grant", format!("{what}: unknown")),
            Err(()) => {
                return error(
                    "temporarily_unavailable",
                    format!("{what}: in use by another request; try again"),
                )
            }
        };
        if t.reused {
            spi::run(&REVOKE_FAMILY, &[t.family.into()], |_| ());
            return error(
                "invalid_grant",
                format!("{what}: already used; every token of this authorization is revoked"),
            );
        }
        if t.revoked || t.expired {
            return error("invalid_grant", format!("{what}: expired or revoked"));
        }
        if p_client_id != Some(t.client_id.as_str()) {
            return error(
                "invalid_grant",
                format!("{what}: was issued to another client"),
            );
        }
        if p_resource.is_some_and(|r| r != t.resource) {
            return error(
                "invalid_target",
                "resource: is not the one this grant is for",
            );
        }
        if kind == Kind::Code {
            if p_redirect_uri != t.redirect_uri.as_deref() {
                return error(
                    "invalid_grant",
                    "redirect_uri: is not the one the code was issued to",
                );
            }
            let verifier = p_code_verifier.unwrap_or("");
            if !token::pkce_matches(verifier, t.code_challenge.as_deref().unwrap_or("")) {
                return error(
                    "invalid_grant",
                    "code_verifier: does not match the code_challenge (S256)",
                );
            }
        }
        if !key_active(t.key_id) {
            spi::run(&REVOKE_FAMILY, &[t.family.into()], |_| ());
            return error(
                "invalid_grant",
                "the MCP key of this grant is no longer active",
            );
        }
        // Used only now: a request with the wrong client, audience or verifier leaves
        // the secret to its owner.
        spi::run(&MARK, &[digest.as_str().into(), t.tenant_id.into()], |_| ());
        issue(&t)
    })
}

const REVOKE: Statement = Statement {
    sql: "UPDATE @s.mcp_oauth_tokens SET revoked_at = pg_catalog.now()
           WHERE revoked_at IS NULL AND client_id = $2 AND kind <> 'code'
             AND (digest = $1 OR family = (SELECT family FROM @s.mcp_oauth_tokens
                                            WHERE digest = $1 AND kind = 'refresh' AND client_id = $2))
          RETURNING 1",
    args: &[TEXT, TEXT],
    writes: true,
};

/// Token revocation (RFC 7009): an access token ends; a refresh token ends with its
/// whole family. Only the client it was issued to may revoke it. True when a live
/// token ended (the endpoint answers 200 either way).
#[pg_extern(security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_revoke(p_token: Option<&str>, p_client_id: Option<&str>) -> bool {
    super::bounded(|| {
        let secret = p_token.unwrap_or("");
        if !matches!(token::parse(secret), Some(Kind::Access | Kind::Refresh)) {
            return false;
        }
        let args = [
            token::digest(secret).into(),
            p_client_id.unwrap_or("").into(),
        ];
        spi::run(&REVOKE, &args, |t| !t.is_empty())
    })
}
