//! The response contract of `call_tool` and `list_tools`, defined once for the
//! extension that writes it and the server and CLI that read it:
//! `{"ok": true, "result": ...}` or
//! `{"ok": false, "error": {"type": ..., "message": ..., "retry_after_ms": ...}}`.

use serde_json::{json, Value};

/// The one client-facing message for every key that does not authenticate, whatever
/// the reason (unknown, malformed, disabled, revoked, expired, rotated out).
pub const INVALID_KEY: &str = "Invalid or disabled MCP key";
/// The message of a refused tool, for keys that may not call it.
pub const TOOL_NOT_ALLOWED: &str = "Tool not allowed for this key";
/// The message of a call over the key's per-minute budget.
pub const RATE_LIMITED: &str = "Rate limit exceeded";
/// How a `not_found` for a tool name begins (a not_found from a tool itself, such as
/// "Job not found", does not): MCP servers answer it as an unknown tool (-32602).
pub const UNKNOWN_TOOL: &str = "Unknown tool: ";

/// The error types of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Authentication,
    Permission,
    RateLimit,
    Validation,
    NotFound,
    InvalidState,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Authentication,
        ErrorKind::Permission,
        ErrorKind::RateLimit,
        ErrorKind::Validation,
        ErrorKind::NotFound,
        ErrorKind::InvalidState,
        ErrorKind::Internal,
    ];

    /// The `error.type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Validation => "validation_error",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidState => "invalid_state",
            ErrorKind::Internal => "internal_error",
        }
    }

    /// The kind named by an `error.type` string; unknown strings are internal errors.
    pub fn parse(s: &str) -> ErrorKind {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(ErrorKind::Internal)
    }

    /// Whether an MCP server answers this kind with a JSON-RPC error (-32000) rather
    /// than a tool result marked `isError`: the caller, not the tool, is refused.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorKind::Authentication | ErrorKind::Permission | ErrorKind::RateLimit
        )
    }
}

/// A success envelope.
pub fn ok(result: Value) -> Value {
    json!({"ok": true, "result": result})
}

/// A failure envelope.
pub fn failure(kind: ErrorKind, message: &str, retry_after_ms: Option<i32>) -> Value {
    let mut error = json!({"type": kind.as_str(), "message": message});
    if let Some(ms) = retry_after_ms {
        error["retry_after_ms"] = json!(ms);
    }
    json!({"ok": false, "error": error})
}

/// An envelope as a client reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    Ok(Value),
    Failed(Failure),
}

/// The error half of an envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after_ms: Option<i64>,
}

impl Envelope {
    /// Reads an envelope; anything that is not one is an internal error.
    pub fn read(value: Value) -> Envelope {
        if value.get("ok") == Some(&Value::Bool(true)) {
            let mut value = value;
            return Envelope::Ok(value.get_mut("result").map(Value::take).unwrap_or_default());
        }
        let error = value.get("error");
        let text = |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str);
        Envelope::Failed(Failure {
            kind: ErrorKind::parse(text("type").unwrap_or("internal_error")),
            message: text("message")
                .unwrap_or("the database answered without an envelope")
                .to_string(),
            retry_after_ms: error
                .and_then(|e| e.get("retry_after_ms"))
                .and_then(Value::as_i64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_strings() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(k.as_str()), k);
        }
        assert_eq!(ErrorKind::parse("something_new"), ErrorKind::Internal);
    }

    #[test]
    fn only_the_callers_refusals_are_protocol_errors() {
        let refusals: Vec<_> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.is_refusal())
            .map(ErrorKind::as_str)
            .collect();
        assert_eq!(
            refusals,
            [
                "authentication_error",
                "permission_error",
                "rate_limit_error"
            ]
        );
    }

    #[test]
    fn envelopes_read_back_what_was_written() {
        assert_eq!(
            Envelope::read(ok(json!({"n": 1}))),
            Envelope::Ok(json!({"n": 1}))
        );
        let written = failure(ErrorKind::RateLimit, RATE_LIMITED, Some(1500));
        assert_eq!(
            written["error"],
            json!({"type": "rate_limit_error", "message": "Rate limit exceeded", "retry_after_ms": 1500})
        );
        assert_eq!(
            Envelope::read(written),
            Envelope::Failed(Failure {
                kind: ErrorKind::RateLimit,
                message: RATE_LIMITED.into(),
                retry_after_ms: Some(1500)
            })
        );
        let Envelope::Failed(f) = Envelope::read(json!({"something": "else"})) else {
            panic!("not an envelope must read as a failure");
        };
        assert_eq!(f.kind, ErrorKind::Internal);
    }
}
