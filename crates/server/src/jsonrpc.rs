//! One reading of an incoming JSON-RPC message, shared by both transports, and the
//! one builder of every JSON-RPC error object the server writes itself. rmcp drops
//! or misnames what it cannot decode (bad JSON, a batch, params that do not fit the
//! method); read here first, each gets its proper code: -32700 for what is not
//! JSON, -32600 for what is not a request, -32602 for params that do not fit.

use rmcp::model::ClientJsonRpcMessage;
use serde::Deserialize;
use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;
/// The server's own refusals (a key, a permission, a limit), as over stdio.
pub const REFUSED: i64 = -32000;

/// The longest message text kept in an error (a serde message quotes its input).
const MAX_MESSAGE: usize = 300;

/// A JSON-RPC error answer: `id` is the request's, or null when it could not be read.
pub fn error(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let message: String = message.chars().take(MAX_MESSAGE).collect();
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error})
}

/// What the transports need to know of a message that reads well.
#[derive(Debug, Default)]
pub struct Message {
    /// A request's id (a string or a number); None for a notification.
    pub id: Option<Value>,
    pub method: String,
    /// `params.name` of a `tools/call`.
    pub tool: Option<String>,
    /// `params._meta.apiKey`, as given (any JSON type).
    pub api_key: Option<Value>,
    /// `params.requestId` of `notifications/cancelled`.
    pub cancels: Option<Value>,
    /// The message written again as read: a member given twice appears once (the
    /// last), so whoever reads it next reads what was checked here.
    pub body: Vec<u8>,
}

/// A message that does not read as one request or notification: the error to answer.
#[derive(Debug)]
pub struct Refused {
    pub code: i64,
    pub id: Option<Value>,
    pub message: String,
}

impl Refused {
    fn new(code: i64, id: Option<&Value>, message: impl Into<String>) -> Self {
        Refused {
            code,
            id: id.cloned(),
            // A parser's message quotes what it read, which may be a key.
            message: mcp_auth_core::redact::text(&message.into()),
        }
    }

    pub fn to_value(&self) -> Value {
        error(self.id.as_ref(), self.code, &self.message, None)
    }
}

/// The params of the methods the server serves must read as their types: rmcp
/// would take a misfit for an unknown method (-32601) rather than say -32602.
fn params_fit(method: &str, params: Option<&Value>) -> Result<(), String> {
    use rmcp::model::{CallToolRequestParams, InitializeRequestParams, PaginatedRequestParams};
    fn fits<T: serde::de::DeserializeOwned>(params: Option<&Value>) -> Result<(), String> {
        let params = params.ok_or("params: missing")?;
        // Read in place: no copy of the arguments.
        T::deserialize(params)
            .map(|_| ())
            .map_err(|e| format!("params: {e}"))
    }
    match method {
        "tools/call" => fits::<CallToolRequestParams>(params),
        "initialize" => fits::<InitializeRequestParams>(params),
        "tools/list" if params.is_some_and(|p| !p.is_null()) => {
            fits::<PaginatedRequestParams>(params)
        }
        _ => Ok(()),
    }
}

/// Reads one message as rmcp will, and says what is wrong with it, when anything is.
/// A response (the client answering the server) reads as a message with no method.
pub fn read(bytes: &[u8]) -> Result<Message, Refused> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        Refused::new(
            PARSE_ERROR,
            None,
            "Parse error: the message is not valid UTF-8",
        )
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Refused::new(PARSE_ERROR, None, format!("Parse error: {e}")))?;
    let Value::Object(message) = &value else {
        let why = if value.is_array() {
            "Invalid Request: batches are not supported; send one message at a time"
        } else {
            "Invalid Request: a message must be a JSON object"
        };
        return Err(Refused::new(INVALID_REQUEST, None, why));
    };
    let id = message
        .get("id")
        .filter(|i| i.is_string() || i.is_number())
        .cloned();
    if message.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(Refused::new(
            INVALID_REQUEST,
            id.as_ref(),
            "Invalid Request: \"jsonrpc\" must be \"2.0\"",
        ));
    }
    if message.get("id").is_some() && id.is_none() {
        return Err(Refused::new(
            INVALID_REQUEST,
            None,
            "Invalid Request: \"id\" must be a string or an integer",
        ));
    }
    let method = match message.get("method") {
        Some(Value::String(m)) => m.clone(),
        None if message.contains_key("result") || message.contains_key("error") => String::new(),
        _ => {
            return Err(Refused::new(
                INVALID_REQUEST,
                id.as_ref(),
                "Invalid Request: \"method\" must be a string",
            ))
        }
    };
    let params = message.get("params");
    if let Err(e) = params_fit(&method, params) {
        return Err(Refused::new(
            INVALID_PARAMS,
            id.as_ref(),
            format!("Invalid params: {e}"),
        ));
    }
    let field = |name: &str| params.and_then(|p| p.get(name));
    let read = Message {
        tool: (method == "tools/call")
            .then(|| field("name").and_then(Value::as_str).map(str::to_owned))
            .flatten(),
        api_key: field("_meta").and_then(|m| m.get("apiKey")).cloned(),
        cancels: (method == "notifications/cancelled")
            .then(|| field("requestId").cloned())
            .flatten(),
        body: serde_json::to_vec(&value).unwrap_or_default(),
        id,
        method,
    };
    // Read as rmcp will read it (the methods read above need no second reading).
    let served = matches!(
        read.method.as_str(),
        "tools/call" | "initialize" | "tools/list"
    );
    if served {
        return Ok(read);
    }
    if let Err(e) = ClientJsonRpcMessage::deserialize(&value) {
        // A well-formed request whose parameters do not fit its method: -32602.
        let (code, what) = if read.id.is_some() {
            (INVALID_PARAMS, "Invalid params")
        } else {
            (INVALID_REQUEST, "Invalid Request")
        };
        return Err(Refused::new(code, read.id.as_ref(), format!("{what}: {e}")));
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> (Value, i64) {
        let r = read(text.as_bytes()).unwrap_err();
        (r.id.unwrap_or(Value::Null), r.code)
    }

    #[test]
    fn each_fault_gets_its_code_and_keeps_the_id_it_could_read() {
        assert_eq!(refused("{"), (Value::Null, PARSE_ERROR));
        assert_eq!(
            refused(r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]"#),
            (Value::Null, INVALID_REQUEST)
        );
        assert_eq!(refused("42"), (Value::Null, INVALID_REQUEST));
        assert_eq!(
            refused(r#"{"id": 7, "method": "ping"}"#),
            (json!(7), INVALID_REQUEST)
        );
        assert_eq!(
            refused(r#"{"jsonrpc": "2.0", "id": 3, "method": 5}"#),
            (json!(3), INVALID_REQUEST)
        );
        assert_eq!(
            refused(r#"{"jsonrpc": "2.0", "id": null, "method": "ping"}"#),
            (Value::Null, INVALID_REQUEST)
        );
        for params in [
            r#""params": {"name": "fetch_jobs", "arguments": "x"}"#,
            r#""params": {"name": 5}"#,
            r#""x": 1"#,
        ] {
            let text =
                format!(r#"{{"jsonrpc": "2.0", "id": "a", "method": "tools/call", {params}}}"#);
            assert_eq!(refused(&text), (json!("a"), INVALID_PARAMS), "{text}");
        }
        assert_eq!(
            refused(r#"{"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {}}"#),
            (json!(2), INVALID_PARAMS)
        );
        assert!(read(b"{\"a\": \"\xff\"}").is_err_and(|r| r.code == PARSE_ERROR));
    }

    #[test]
    fn a_good_call_is_read_for_its_tool_key_and_id() {
        let m = read(
            br#"{"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                 "params": {"name": "fetch_jobs", "arguments": {}, "_meta": {"apiKey": "k"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (m.id, m.tool.as_deref(), m.api_key),
            (Some(json!(9)), Some("fetch_jobs"), Some(json!("k")))
        );
        let c = read(
            br#"{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}"#,
        )
        .unwrap();
        assert_eq!((c.id, c.cancels), (None, Some(json!(9))));
    }
}
