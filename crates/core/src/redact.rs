//! What may never be stored or sent: values of properties whose name looks like a
//! secret, and anything shaped like an MCP key. Applied to tool arguments, error
//! messages and server-log text before they reach a table or a notification.

use crate::key;
use serde_json::Value;

/// What a redacted value becomes.
pub const REDACTED: &str = "[redacted]";

/// Name fragments that mark a secret, compared with the property name lowercased and
/// stripped of everything but letters and digits (`API-Key`, `api_key`, `apiKey` alike).
const SECRET_NAMES: &[&str] = &[
    "apikey",
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "credential",
    "privatekey",
    "accesskey",
];

/// True when a property called `name` must not keep its value.
pub fn is_secret_name(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_NAMES.iter().any(|s| folded.contains(s))
}

/// A copy of `value` with secret-named properties (at any depth) and key-shaped
/// strings replaced by `"[redacted]"`.
pub fn json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_name(k) {
                        Value::String(REDACTED.into())
                    } else {
                        json(v)
                    };
                    // A key used as a property name is still a key.
                    (text(k), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::String(s) => Value::String(text(s)),
        other => other.clone(),
    }
}

/// `s` cut to at most `max_bytes` bytes (on a character boundary), with a visible
/// marker saying how long it was: stored texts stay bounded whatever a client sends.
pub fn cap(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_string();
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [truncated: {} bytes in all]", &s[..end], s.len())
}

/// `s` with every key-shaped run (`mcp_live_`/`mcp_test_` and 38 base62 characters)
/// cut to its 16-character display prefix followed by `[redacted]`.
pub fn text(s: &str) -> String {
    if !s.contains("mcp_live_") && !s.contains("mcp_test_") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = find_prefix(rest) {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        // Any run of base62 after the prefix is treated as key material, even a
        // truncated or over-long one: better one redaction too many than a leak.
        let run = 9 + candidate[9..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if run >= key::DISPLAY_PREFIX_LEN {
            out.push_str(&candidate[..key::DISPLAY_PREFIX_LEN]);
            out.push_str(REDACTED);
        } else {
            out.push_str(&candidate[..run]);
        }
        rest = &candidate[run..];
    }
    out.push_str(rest);
    out
}

fn find_prefix(s: &str) -> Option<usize> {
    match (s.find("mcp_live_"), s.find("mcp_test_")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_in_any_case_and_spelling() {
        for name in [
            "apiKey",
            "api_key",
            "API-KEY",
            "password",
            "Password",
            "db_password",
            "client_secret",
            "token",
            "accessToken",
            "Authorization",
            "x-authorization",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["status", "limit", "job_id", "author", "description"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn nested_properties_are_redacted() {
        let args = json!({
            "status": "in_progress",
            "limit": 50,
            "auth": {"Authorization": "Bearer abc", "nested": [{"apiKey": "x"}, {"ok": 1}]},
            "password": {"even": "objects"},
        });
        let out = json(&args);
        assert_eq!(out["status"], "in_progress");
        assert_eq!(out["limit"], 50);
        assert_eq!(out["auth"]["Authorization"], REDACTED);
        assert_eq!(out["auth"]["nested"][0]["apiKey"], REDACTED);
        assert_eq!(out["auth"]["nested"][1]["ok"], 1);
        assert_eq!(out["password"], REDACTED);
    }

    #[test]
    fn key_shaped_property_names_are_redacted() {
        let k = key::generate(key::Environment::Test);
        let out = json(&json!({&k: 1, "nested": [{&k: {"x": 2}}]})).to_string();
        assert!(!out.contains(&k), "{out}");
        assert!(out.contains(&format!("{}{REDACTED}", &k[..16])), "{out}");
    }

    #[test]
    fn cap_keeps_short_texts_and_marks_cut_ones() {
        assert_eq!(cap("short", 10), "short");
        let long = "é".repeat(100); // 200 bytes, 2 per character
        let out = cap(&long, 51);
        assert!(out.starts_with(&"é".repeat(25)), "{out}");
        assert!(out.ends_with("... [truncated: 200 bytes in all]"), "{out}");
    }

    #[test]
    fn key_shaped_strings_keep_only_their_prefix() {
        let k = key::generate(key::Environment::Live);
        let out = text(&format!("bad key {k}, retry"));
        assert_eq!(out, format!("bad key {}{REDACTED}, retry", &k[..16]));
        assert!(!out.contains(&k));
        let j = json(&json!({"note": format!("use {k}"), "list": [k.clone()]}));
        assert!(!j.to_string().contains(&k[16..]));
        // Short, harmless mentions stay as they are.
        assert_eq!(
            text("keys look like mcp_live_..."),
            "keys look like mcp_live_..."
        );
        assert_eq!(text("plain"), "plain");
    }
}
