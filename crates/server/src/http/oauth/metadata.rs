//! The two metadata documents a client reads first: Protected Resource Metadata
//! (RFC 9728), which names the authorization server, and Authorization Server
//! Metadata (RFC 8414), which names its endpoints.

use super::json;
use crate::http::State;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

pub async fn protected_resource(Extract(state): Extract<Arc<State>>) -> Response {
    let o = state.oauth();
    json(
        StatusCode::OK,
        &json!({
            "resource": o.resource,
            "authorization_servers": [o.issuer],
            "scopes_supported": ["mcp"],
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp_auth MCP server",
        }),
    )
}

pub async fn authorization_server(Extract(state): Extract<Arc<State>>) -> Response {
    let o = state.oauth();
    let at = |path: &str| format!("{}{path}", o.issuer);
    json(
        StatusCode::OK,
        &json!({
            "issuer": o.issuer,
            "authorization_endpoint": at("/authorize"),
            "token_endpoint": at("/token"),
            "registration_endpoint": at("/register"),
            "revocation_endpoint": at("/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["mcp"],
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": true,
        }),
    )
}
