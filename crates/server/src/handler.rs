//! The MCP side: `tools/list` and `tools/call` mapped onto the extension's
//! `list_tools` and `call_tool`, and their envelopes (`mcp_auth_core::envelope`)
//! mapped onto MCP answers. The caller's refusals (authentication, permission, rate
//! limit) are JSON-RPC errors -32000 with the message and `data.type`; an unknown
//! tool is -32602, as the MCP specification lists it; other tool failures are
//! `isError` results.

use crate::db::{Database, Entry};
use crate::http::metrics::{Metrics, Outcome};
use mcp_auth_core::envelope::{Envelope, ErrorKind, Failure, INVALID_KEY, UNKNOWN_TOOL};
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::ServerHandler;
use serde_json::{json, Value};
use std::sync::Arc;

pub struct McpAuthServer {
    db: Arc<Database>,
    /// MCP_API_KEY (stdio only); a request's `_meta.apiKey` wins over it.
    default_key: Option<String>,
    /// Over HTTP: the key of each request is its `Authorization: Bearer` (when it has
    /// no `_meta.apiKey`), and calls are counted for `/metrics`.
    http: Option<Metrics>,
    /// Server name and version from the key's tenant configuration, read at the
    /// handshake (the first database use); the defaults until then or without a key.
    identity: std::sync::Mutex<Implementation>,
}

/// The key a request names.
enum Key {
    Given(String),
    /// None at all: no `_meta.apiKey` (or an empty one) and no MCP_API_KEY.
    Missing,
    /// A `_meta.apiKey` that is not a string: invalid, and never a reason to fall back.
    Malformed,
}

impl McpAuthServer {
    pub fn new(db: Database, default_key: Option<String>) -> Self {
        Self::with(Arc::new(db), default_key, None)
    }

    /// The server of one HTTP request: no server-wide key.
    pub fn for_http(db: Arc<Database>, metrics: Metrics) -> Self {
        Self::with(db, None, Some(metrics))
    }

    fn with(db: Arc<Database>, default_key: Option<String>, http: Option<Metrics>) -> Self {
        Self {
            db,
            default_key,
            http,
            identity: std::sync::Mutex::new(
                Implementation::new("eryxon-flow-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("mcp_auth MCP server"),
            ),
        }
    }

    /// Reads server_name and server_version from mcp_server_config of the tenant
    /// of `key` (in the same statement that validates the key).
    async fn load_identity(&self, key: Option<String>) {
        let Some(key) = &key else { return };
        let config = self
            .db
            .query_text(
                // The configuration is read after the key row: the tenant exists only then.
                "WITH k AS MATERIALIZED (SELECT key_id FROM validate_mcp_key($1))
                 SELECT (SELECT jsonb_build_object('name', c.server_name, 'version', c.server_version)
                           FROM get_mcp_server_config() c)::text
                   FROM k",
                &[key],
            )
            .await;
        let Ok(Some(text)) = config else { return };
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        if let (Some(name), Some(version)) = (v["name"].as_str(), v["version"].as_str()) {
            let mut identity = self.identity.lock().expect("identity lock");
            identity.name = name.to_string();
            identity.version = version.to_string();
        }
    }

    /// The key the transport gives: over HTTP the request's bearer key, over stdio
    /// MCP_API_KEY.
    fn transport_key(&self, extensions: &Extensions) -> Option<String> {
        if self.http.is_some() {
            let parts = extensions.get::<axum::http::request::Parts>()?;
            crate::http::bearer(&parts.headers).map(str::to_owned)
        } else {
            self.default_key.clone()
        }
    }

    /// The key for this request: `_meta.apiKey` when present and not empty (even when
    /// invalid: it never falls back), else the transport's.
    fn key_for(&self, meta: Option<&RequestMetaObject>, extensions: &Extensions) -> Key {
        match meta.and_then(|m| m.0 .0.get("apiKey")) {
            Some(Value::String(k)) if !k.is_empty() => Key::Given(k.clone()),
            Some(Value::String(_)) | Some(Value::Null) | None => {
                match self.transport_key(extensions) {
                    Some(k) => Key::Given(k),
                    None => Key::Missing,
                }
            }
            Some(_) => Key::Malformed,
        }
    }

    fn require_key(
        &self,
        meta: Option<&RequestMetaObject>,
        extensions: &Extensions,
    ) -> Result<String, ErrorData> {
        match self.key_for(meta, extensions) {
            Key::Given(k) => Ok(k),
            Key::Missing | Key::Malformed => Err(refusal(&Failure {
                kind: ErrorKind::Authentication,
                message: INVALID_KEY.into(),
                retry_after_ms: None,
            })),
        }
    }
}

const REFUSED: ErrorCode = ErrorCode(-32000);

/// The JSON-RPC error for a refused caller: -32000, the message, `data.type`.
fn refusal(f: &Failure) -> ErrorData {
    let mut data = json!({"type": f.kind.as_str()});
    if let Some(ms) = f.retry_after_ms {
        data["retry_after_ms"] = json!(ms);
    }
    ErrorData::new(REFUSED, f.message.clone(), Some(data))
}

fn unavailable(e: crate::error::Error) -> ErrorData {
    // The detail never holds a key: the key is only ever sent as a bind parameter.
    eprintln!("mcp-auth: {e}");
    ErrorData::internal_error("The MCP server cannot reach its database", None)
}

/// The first place `v` holds a NUL character, which PostgreSQL text cannot take,
/// as a dotted field name (property names count too).
fn nul_in(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_string()),
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            let field = format!("{path}.{}", k.replace('\0', "\\u0000"));
            if k.contains('\0') {
                Some(field)
            } else {
                nul_in(v, &field)
            }
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in(v, &format!("{path}.{i}"))),
        _ => None,
    }
}

fn tool_failure(message: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message)]).into()
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
        self.load_identity(self.transport_key(&context.extensions))
            .await;
        self.negotiate_initialize(&request)
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.load_identity(self.transport_key(&context.extensions))
            .await;
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
        let key = self.require_key(Some(&context.meta), &context.extensions)?;
        let answer = self
            .db
            .call(Entry::ListTools, &[&key])
            .await
            .map_err(unavailable)?;
        match Envelope::read(answer) {
            Envelope::Ok(result) => {
                let tools: Vec<Tool> = serde_json::from_value(result["tools"].clone())
                    .map_err(|e| ErrorData::internal_error(format!("bad tool list: {e}"), None))?;
                Ok(ListToolsResult::with_all_items(tools))
            }
            Envelope::Failed(f) if f.kind.is_refusal() => Err(refusal(&f)),
            Envelope::Failed(f) => Err(ErrorData::internal_error(f.message, None)),
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = std::time::Instant::now();
        let answer = self.call(&request, &context).await;
        if let Some(metrics) = &self.http {
            let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
            let outcome = match &answer {
                // Refused here, before the database: the name is not known to be a
                // tool, so it is no label (a client could name anything, any size).
                Ok(_) if request.name.contains('\0') || nul_in(&arguments, "").is_some() => {
                    Outcome::Invalid
                }
                Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                    Outcome::ToolError(&request.name)
                }
                Ok(_) => Outcome::Ok(&request.name),
                Err(e) if e.code == REFUSED => Outcome::Refused(
                    e.data
                        .as_ref()
                        .and_then(|d| d["type"].as_str())
                        .unwrap_or(""),
                ),
                Err(e) if e.code == ErrorCode::INVALID_PARAMS => Outcome::UnknownTool,
                Err(_) => Outcome::Unavailable,
            };
            metrics.call(outcome, started.elapsed());
        }
        answer
    }
}

impl McpAuthServer {
    async fn call(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let meta = request.meta.as_ref().or(Some(&context.meta));
        let key = self.require_key(meta, &context.extensions)?;
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        // What PostgreSQL cannot hold never reaches it: named, like any bad argument.
        if request.name.contains('\0') {
            return Ok(tool_failure(
                "name: must not contain the NUL character (\\u0000)".into(),
            ));
        }
        if let Some(field) = nul_in(&arguments, "arguments") {
            return Ok(tool_failure(format!(
                "Invalid arguments: {field}: must not contain the NUL character (\\u0000)"
            )));
        }
        let client = context
            .peer
            .peer_info()
            .map(|info| json!({"name": info.client_info.name, "version": info.client_info.version}))
            .unwrap_or_else(|| json!({}))
            .to_string();
        let answer = self
            .db
            .call(
                Entry::CallTool,
                &[&key, &request.name, &arguments.to_string(), &client],
            )
            .await
            .map_err(unavailable)?;
        match Envelope::read(answer) {
            Envelope::Ok(result) => Ok(CallToolResult::structured(result).into()),
            Envelope::Failed(f) if f.kind.is_refusal() => Err(refusal(&f)),
            // The database says not_found only to a key allowed to call that name.
            Envelope::Failed(f)
                if f.kind == ErrorKind::NotFound && f.message.starts_with(UNKNOWN_TOOL) =>
            {
                Err(ErrorData::invalid_params(f.message, None))
            }
            Envelope::Failed(f) => Ok(tool_failure(f.message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_found_in_values_and_names() {
        assert_eq!(nul_in(&json!({"a": "ok"}), "arguments"), None);
        assert_eq!(
            nul_in(&json!({"a": {"b": ["x", "y\u{0}z"]}}), "arguments").as_deref(),
            Some("arguments.a.b.1")
        );
        assert_eq!(
            nul_in(&json!({"k\u{0}": 1}), "arguments").as_deref(),
            Some("arguments.k\\u0000")
        );
    }
}
