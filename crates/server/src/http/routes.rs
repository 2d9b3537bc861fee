//! `/healthz`, `/metrics` and `/register`, beside `/mcp`, behind the same Host and
//! Origin checks.

use super::State;
use axum::extract::State as Extract;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// Whether the database answers and which mcp_auth it has. A failure is only
/// "unreachable": the reason (which may name the login role) goes to the log.
pub async fn healthz(Extract(state): Extract<Arc<State>>) -> Response {
    let version = state
        .db
        .query_text(
            "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'mcp_auth'",
            &[],
        )
        .await;
    let (status, body) = match version {
        Ok(Some(v)) => (
            StatusCode::OK,
            json!({"status": "ok", "database": "reachable", "mcp_auth": v}),
        ),
        Ok(None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "database": "reachable", "mcp_auth": null}),
        ),
        Err(e) => {
            tracing::warn!(
                "health check: {}",
                mcp_auth_core::redact::text(&e.to_string())
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "database": "unreachable"}),
            )
        }
    };
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub async fn metrics(Extract(state): Extract<Arc<State>>) -> Response {
    let text = state
        .metrics
        .render(state.db.in_use(), state.db.pool_size());
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// OAuth dynamic client registration, which this server does not do: its clients
/// hold keys. A client that meets a 401 (mcp-remote, say) tries to register before
/// it gives up, and shows what this answers: so it names the key as the problem.
pub async fn register() -> Response {
    let body = json!({
        "error": "invalid_client_metadata",
        "error_description": format!(
            "{}: this server takes an MCP key, not OAuth; check the key sent as Authorization: Bearer mcp_...",
            mcp_auth_core::envelope::INVALID_KEY
        ),
    });
    let mut response = (StatusCode::BAD_REQUEST, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
