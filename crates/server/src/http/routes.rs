//! `/healthz`, `/metrics` and `/register`, beside `/mcp`, behind the same Host and
//! Origin checks.

use super::State;
use axum::extract::State as Extract;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a health answer is reused: a client without a key can ask as often as
/// it likes, and the database is asked at most once in this time.
const HEALTH_FOR: Duration = Duration::from_secs(1);

/// Whether the database answers and which mcp_auth it has. A failure is only
/// "unreachable": the reason (which may name the login role) goes to the log.
pub async fn healthz(Extract(state): Extract<Arc<State>>) -> Response {
    let mut last = state.health.lock().await;
    let fresh = last
        .as_ref()
        .filter(|(at, _)| at.elapsed() < HEALTH_FOR)
        .map(|(_, answer)| answer.clone());
    let (status, body) = match fresh {
        Some(answer) => answer,
        None => {
            let answer = health(&state).await;
            *last = Some((Instant::now(), answer.clone()));
            answer
        }
    };
    drop(last);
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A health answer: the status and the JSON body.
pub type Health = (StatusCode, serde_json::Value);

async fn health(state: &State) -> Health {
    let version = state
        .db
        .query_text(
            "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'mcp_auth'",
            &[],
        )
        .await;
    match version {
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
    }
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
