//! The MCP side: `tools/list` and `tools/call` mapped onto the extension's
//! `list_tools` and `call_tool`, and their envelopes mapped onto MCP answers.
//! Authentication, permission and rate-limit failures are JSON-RPC errors -32000
//! with the guide's messages and `data.type`; tool failures are `isError` results.

use crate::db::Database;
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::ServerHandler;
use serde_json::{json, Value};
use std::sync::Arc;

pub struct McpAuthServer {
    db: Arc<Database>,
    /// MCP_API_KEY; a request's `_meta.apiKey` wins over it.
    default_key: Option<String>,
    /// Server name and version from the key's tenant configuration, read at the
    /// handshake (the first database use); the defaults until then or without a key.
    identity: std::sync::Mutex<Implementation>,
}

impl McpAuthServer {
    pub fn new(db: Database, default_key: Option<String>) -> Self {
        Self {
            db: Arc::new(db),
            default_key,
            identity: std::sync::Mutex::new(
                Implementation::new("eryxon-flow-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("mcp_auth MCP server"),
            ),
        }
    }

    /// Reads server_name and server_version from mcp_server_config of the tenant
    /// of MCP_API_KEY (in the same statement that validates the key).
    async fn load_identity(&self) {
        let Some(key) = &self.default_key else { return };
        let config = self
            .db
            .call(
                // The configuration is read after the key row: the tenant exists only then.
                "WITH k AS MATERIALIZED (SELECT key_id FROM validate_mcp_key($1))
                 SELECT (SELECT jsonb_build_object('name', c.server_name, 'version', c.server_version)
                           FROM get_mcp_server_config() c)::text
                   FROM k",
                &[key],
            )
            .await;
        if let Ok(v) = config {
            if let (Some(name), Some(version)) = (v["name"].as_str(), v["version"].as_str()) {
                let mut identity = self.identity.lock().expect("identity lock");
                identity.name = name.to_string();
                identity.version = version.to_string();
            }
        }
    }

    /// The key for this request: `_meta.apiKey` when present and not empty (even when
    /// invalid: it never falls back), else MCP_API_KEY. None means no key at all.
    fn key_for(&self, meta: Option<&RequestMetaObject>) -> Option<String> {
        let from_meta = meta
            .and_then(|m| m.0 .0.get("apiKey"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty());
        match from_meta {
            Some(k) => Some(k.to_string()),
            None => self.default_key.clone(),
        }
    }
}

const AUTH_CODE: ErrorCode = ErrorCode(-32000);

/// The JSON-RPC error for an envelope's error, or None for tool-level failures.
fn protocol_error(error: &Value) -> Option<ErrorData> {
    let kind = error
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("internal_error");
    if !matches!(
        kind,
        "authentication_error" | "permission_error" | "rate_limit_error"
    ) {
        return None;
    }
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("Invalid or disabled MCP key")
        .to_string();
    let mut data = json!({"type": kind});
    if let Some(ms) = error.get("retry_after_ms") {
        data["retry_after_ms"] = ms.clone();
    }
    Some(ErrorData::new(AUTH_CODE, message, Some(data)))
}

fn missing_key() -> ErrorData {
    ErrorData::new(
        AUTH_CODE,
        "Invalid or disabled MCP key",
        Some(json!({"type": "authentication_error"})),
    )
}

fn unavailable(detail: String) -> ErrorData {
    // The detail never holds a key: the key is only ever sent as a query parameter.
    eprintln!("mcp-auth: {detail}");
    ErrorData::internal_error("The MCP server cannot reach its database", None)
}

impl ServerHandler for McpAuthServer {
    fn get_info(&self) -> ServerConfig {
        let identity = self.identity.lock().expect("identity lock").clone();
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(identity)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        self.load_identity().await;
        self.negotiate_initialize(&request)
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.load_identity().await;
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let key = self.key_for(Some(&context.meta)).ok_or_else(missing_key)?;
        let envelope = self
            .db
            .call("SELECT list_tools($1)::text", &[&key])
            .await
            .map_err(unavailable)?;
        if let Some(error) = envelope.get("error") {
            return Err(protocol_error(error).unwrap_or_else(|| {
                ErrorData::internal_error("list_tools failed", Some(error.clone()))
            }));
        }
        let tools: Vec<Tool> = serde_json::from_value(envelope["result"]["tools"].clone())
            .map_err(|e| ErrorData::internal_error(format!("bad tool list: {e}"), None))?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let meta = request.meta.as_ref().or(Some(&context.meta));
        let key = self.key_for(meta).ok_or_else(missing_key)?;
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default()).to_string();
        let client = context
            .peer
            .peer_info()
            .map(|info| json!({"name": info.client_info.name, "version": info.client_info.version}))
            .unwrap_or_else(|| json!({}))
            .to_string();
        let envelope = self
            .db
            .call(
                "SELECT call_tool($1, $2, $3::text::jsonb, $4::text::jsonb)::text",
                &[&key, &request.name, &arguments, &client],
            )
            .await
            .map_err(unavailable)?;
        if envelope.get("ok") == Some(&Value::Bool(true)) {
            let result = envelope["result"].clone();
            return Ok(CallToolResult::structured(result).into());
        }
        let error = envelope.get("error").cloned().unwrap_or(Value::Null);
        if let Some(e) = protocol_error(&error) {
            return Err(e);
        }
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("Tool failed")
            .to_string();
        Ok(CallToolResult::error(vec![ContentBlock::text(message)]).into())
    }
}
