//! The MCP side: `tools/list` and `tools/call` mapped onto the extension's
//! `list_tools` and `call_tool`, and their envelopes (`mcp_auth_core::envelope`)
//! mapped onto MCP answers. The caller's refusals (authentication, permission, rate
//! limit) are JSON-RPC errors -32000 with the message and `data.type`; an unknown
//! tool is -32602, as the MCP specification lists it; other tool failures are
//! `isError` results.

use crate::cancels::Cancels;
use crate::db::{Database, Entry, Stop};
use crate::metrics::Outcome;
use crate::report::Slot;
use mcp_auth_core::envelope::{Envelope, ErrorKind, Failure, INVALID_KEY, UNKNOWN_TOOL};
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::ServerHandler;
use serde_json::{json, Value};
use std::sync::Arc;

/// How requests reach the server, and so where their key comes from.
pub enum Transport {
    /// One client: MCP_API_KEY is the key of a request without `_meta.apiKey`.
    Stdio { default_key: Option<String> },
    /// One request per server: its `Authorization: Bearer` is the default key, its
    /// outcome goes to the gate (`report`), and its calls may be cancelled by a later
    /// request of the same key (`cancels`).
    Http { cancels: Arc<Cancels> },
}

pub struct McpAuthServer {
    db: Arc<Database>,
    transport: Transport,
    /// The server's name from the key's tenant configuration, read at the handshake;
    /// the version is always the server's own.
    identity: std::sync::Mutex<Implementation>,
}

/// The key a request names, and whether it is the transport's (the bearer's).
enum Key {
    Given {
        key: String,
        from_transport: bool,
    },
    /// None at all: no `_meta.apiKey` (or an empty one) and no transport key.
    Missing,
    /// A `_meta.apiKey` that is not a string: invalid, and never a reason to fall back.
    Malformed,
}

impl McpAuthServer {
    pub fn new(db: Arc<Database>, transport: Transport) -> Self {
        Self {
            db,
            transport,
            identity: std::sync::Mutex::new(
                Implementation::new("eryxon-flow-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("mcp_auth MCP server"),
            ),
        }
    }

    /// Reads server_name from mcp_server_config of the tenant of `key`, a key the
    /// database has accepted (in the same statement that validates it).
    async fn load_identity(&self, key: &str) {
        let config = self
            .db
            .query_text(
                // The configuration is read after the key row: the tenant exists only then.
                "WITH k AS MATERIALIZED (SELECT key_id FROM validate_mcp_key($1))
                 SELECT (SELECT c.server_name FROM get_mcp_server_config() c) FROM k",
                &[key],
            )
            .await;
        if let Ok(Some(name)) = config {
            self.identity.lock().expect("identity lock").name = name;
        }
    }

    /// The handshake's key check, over HTTP: the bearer must be a key the database
    /// accepts, so a wrong key is told at connect (401), not at the first call. It
    /// asks through `list_tools`, which answers a refusal without an error (no
    /// line in the PostgreSQL log for a stranger's key).
    async fn handshake(&self, context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
        let Some(key) = self.transport_key(&context.extensions) else {
            return Ok(()); // stdio without MCP_API_KEY: every request brings its key
        };
        if let Transport::Http { .. } = self.transport {
            let answer = self
                .db
                .call(Entry::ListTools, &[&key], &self.stop(context))
                .await
                .map_err(unavailable)?;
            if let Envelope::Failed(f) = Envelope::read(answer) {
                if f.kind.is_refusal() {
                    self.report(context, |r| r.bearer_refused = true);
                    return Err(refusal(&f));
                }
            }
            self.report(context, |r| r.accepted = true);
        }
        self.load_identity(&key).await;
        Ok(())
    }

    /// When this request's database work stops early. Over HTTP a client that goes
    /// away only abandons a call still waiting for a connection (cancelling a running
    /// statement would write an ERROR to the PostgreSQL log for anyone who can close
    /// a socket); a running call is cancelled only by `notifications/cancelled`.
    fn stop(&self, context: &RequestContext<RoleServer>) -> Stop {
        Stop {
            abandon: context.ct.clone(),
            cancel: match self.transport {
                Transport::Stdio { .. } => context.ct.clone(),
                Transport::Http { .. } => tokio_util::sync::CancellationToken::new(),
            },
        }
    }

    /// The key the transport gives: over HTTP the request's bearer key, over stdio
    /// MCP_API_KEY.
    fn transport_key(&self, extensions: &Extensions) -> Option<String> {
        match &self.transport {
            Transport::Http { .. } => {
                let parts = extensions.get::<axum::http::request::Parts>()?;
                crate::bearer::bearer(&parts.headers).map(str::to_owned)
            }
            Transport::Stdio { default_key } => default_key.clone(),
        }
    }

    /// Tells the gate something of this request (over HTTP).
    fn report(
        &self,
        context: &RequestContext<RoleServer>,
        f: impl FnOnce(&mut crate::report::Report),
    ) {
        let slot = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Slot>());
        if let Some(slot) = slot {
            slot.update(f);
        }
    }

    /// The key for this request: `_meta.apiKey` when present and not empty (even when
    /// invalid: it never falls back), else the transport's.
    fn key_for(&self, meta: Option<&RequestMetaObject>, extensions: &Extensions) -> Key {
        match meta.and_then(|m| m.0 .0.get("apiKey")) {
            Some(Value::String(k)) if !k.is_empty() => Key::Given {
                key: k.clone(),
                from_transport: false,
            },
            Some(Value::String(_)) | Some(Value::Null) | None => {
                match self.transport_key(extensions) {
                    Some(key) => Key::Given {
                        key,
                        from_transport: true,
                    },
                    None => Key::Missing,
                }
            }
            Some(_) => Key::Malformed,
        }
    }

    /// The request's key (or the bearer's OAuth access token), and whether it is the
    /// bearer's. A key that is not even shaped like one (format, checksum) is refused
    /// here, without the database.
    fn require_key(
        &self,
        meta: Option<&RequestMetaObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<(String, bool), ErrorData> {
        let refused = || {
            refusal(&Failure {
                kind: ErrorKind::Authentication,
                message: INVALID_KEY.into(),
                retry_after_ms: None,
            })
        };
        match self.key_for(meta, &context.extensions) {
            Key::Given {
                key,
                from_transport,
            } => {
                // An OAuth access token comes only as the bearer (the gate admits it
                // only with --oauth-issuer); the database checks it as it checks keys.
                let token = from_transport
                    && mcp_auth_core::token::parse(&key)
                        == Some(mcp_auth_core::token::Kind::Access);
                if !token && mcp_auth_core::key::parse(&key).is_err() {
                    if from_transport {
                        self.report(context, |r| r.bearer_refused = true);
                    }
                    return Err(refused());
                }
                Ok((key, from_transport))
            }
            Key::Missing | Key::Malformed => Err(refused()),
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
    // (A call whose client has gone is no news: anyone can close a socket.)
    if !matches!(e, crate::error::Error::Abandoned) {
        tracing::error!("{e}");
    }
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
        self.handshake(&context).await?;
        self.negotiate_initialize(&request)
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.handshake(&context).await?;
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
        let (key, from_transport) = self.require_key(Some(&context.meta), &context)?;
        let answer = self
            .db
            .call(Entry::ListTools, &[&key], &self.stop(&context))
            .await
            .map_err(unavailable)?;
        match Envelope::read(answer) {
            Envelope::Ok(result) => {
                self.report(&context, |r| r.accepted = true);
                let tools: Vec<Tool> = serde_json::from_value(result["tools"].clone())
                    .map_err(|e| ErrorData::internal_error(format!("bad tool list: {e}"), None))?;
                Ok(ListToolsResult::with_all_items(tools))
            }
            Envelope::Failed(f) if f.kind.is_refusal() => {
                if from_transport && f.kind == ErrorKind::Authentication {
                    self.report(&context, |r| r.bearer_refused = true);
                }
                Err(refusal(&f))
            }
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
        if let Transport::Http { .. } = self.transport {
            let outcome = match &answer {
                // Refused here, before the database: the name is not known to be a
                // tool, so it is no label (a client could name anything, any size).
                Ok(_) if invalid(&request).is_some() => Outcome::Invalid,
                Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                    Outcome::ToolError(request.name.to_string())
                }
                Ok(_) => Outcome::Ok(request.name.to_string()),
                Err(e) if e.code == REFUSED => Outcome::Refused(
                    e.data
                        .as_ref()
                        .and_then(|d| d["type"].as_str())
                        .unwrap_or("")
                        .to_string(),
                ),
                Err(e) if e.code == ErrorCode::INVALID_PARAMS => Outcome::UnknownTool,
                Err(_) => Outcome::Unavailable,
            };
            self.report(&context, |r| r.call = Some((outcome, started.elapsed())));
        }
        answer
    }
}

/// What of a call PostgreSQL cannot hold (a NUL character), named like any bad argument.
fn invalid(request: &CallToolRequestParams) -> Option<String> {
    if request.name.contains('\0') {
        return Some("name: must not contain the NUL character (\\u0000)".into());
    }
    let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
    nul_in(&arguments, "arguments").map(|field| {
        format!("Invalid arguments: {field}: must not contain the NUL character (\\u0000)")
    })
}

impl McpAuthServer {
    async fn call(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let meta = request.meta.as_ref().or(Some(&context.meta));
        let (key, from_transport) = self.require_key(meta, context)?;
        // What PostgreSQL cannot hold never reaches it.
        if let Some(problem) = invalid(request) {
            return Ok(tool_failure(problem));
        }
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        let client = context
            .peer
            .peer_info()
            .map(|info| json!({"name": info.client_info.name, "version": info.client_info.version}))
            .unwrap_or_else(|| json!({}))
            .to_string();
        // Over HTTP a later request of the same key may cancel this one by its id.
        let stop = self.stop(context);
        let _cancellable = match &self.transport {
            Transport::Http { cancels } => Some(cancels.register(
                mcp_auth_core::key::lookup_digest(&key),
                serde_json::to_string(&context.id).unwrap_or_default(),
                stop.cancel.clone(),
            )),
            Transport::Stdio { .. } => None,
        };
        let answer = self
            .db
            .call(
                Entry::CallTool,
                &[&key, &request.name, &arguments.to_string(), &client],
                &stop,
            )
            .await
            .map_err(unavailable)?;
        let answer = Envelope::read(answer);
        if !matches!(&answer, Envelope::Failed(f) if f.kind == ErrorKind::Authentication) {
            self.report(context, |r| r.accepted = true);
        }
        match answer {
            Envelope::Ok(result) => Ok(CallToolResult::structured(result).into()),
            Envelope::Failed(f) if f.kind.is_refusal() => {
                if let Some(ms) = f.retry_after_ms {
                    let wait = std::time::Duration::from_millis(ms.max(0) as u64);
                    self.report(context, |r| r.retry_after = Some(wait));
                }
                if from_transport && f.kind == ErrorKind::Authentication {
                    self.report(context, |r| r.bearer_refused = true);
                }
                if f.kind == ErrorKind::Permission {
                    self.report(context, |r| r.denied = true);
                }
                Err(refusal(&f))
            }
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
