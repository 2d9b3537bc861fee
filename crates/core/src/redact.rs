//! What may never be stored or sent: values of properties whose name looks like a
//! secret, and anything shaped like an MCP key. Applied to tool arguments, error
//! messages and server-log text before they reach a table or a notification.

use crate::key;
use serde_json::Value;
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

/// What a redacted value becomes.
pub const REDACTED: &str = "[redacted]";

/// Name fragments that mark a secret anywhere in a property name, compared after
/// `fold` (`API-Key`, `api_key`, `apiKey`, `ＡＰＩ＿ＫＥＹ` and `аpikey` with a Cyrillic
/// `а` alike).
const SECRET_FRAGMENTS: &[&str] = &[
    "apikey",
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "pwd",
    "secret",
    "token",
    "authorization",
    "credential",
    "privatekey",
    "accesskey",
    "cookie",
    "bearer",
    "sessionid",
];

/// Words that mark a secret as a name's last word (`key`, `x-auth`, `user_pin`, but
/// not `key_id` or `author`), too short to look for inside other words.
const SECRET_WORDS: &[&str] = &["key", "auth", "pin", "otp", "pass", "sid", "cvv", "cvc"];

/// A name as it is compared: NFKC (full-width and other compatibility forms become
/// plain letters), lowercased, each character replaced by its confusable prototype
/// (UTS #39 skeleton: a Cyrillic `а` reads as `a`), letters and digits only.
fn fold(name: &str) -> String {
    let lowered: String = name.nfkc().collect::<String>().to_lowercase();
    skeleton(&lowered)
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The folded fragments and words, computed once.
fn folded(
    list: &'static [&'static str],
    cell: &'static OnceLock<Vec<String>>,
) -> &'static [String] {
    cell.get_or_init(|| list.iter().map(|w| fold(w)).collect())
}

/// The words of a name: split at anything but letters and digits, and where a lower
/// case letter meets an upper case one (`secretKey`).
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.nfkc() {
        if !c.is_alphanumeric() {
            words.extend((!current.is_empty()).then(|| std::mem::take(&mut current)));
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase();
        current.push(c);
    }
    words.extend((!current.is_empty()).then_some(current));
    words
}

/// True when a property called `name` must not keep its value.
pub fn is_secret_name(name: &str) -> bool {
    static FRAGMENTS: OnceLock<Vec<String>> = OnceLock::new();
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    let whole = fold(name);
    if folded(SECRET_FRAGMENTS, &FRAGMENTS)
        .iter()
        .any(|f| whole.contains(f.as_str()))
    {
        return true;
    }
    let last = words(name).last().map(|w| fold(w)).unwrap_or_default();
    folded(SECRET_WORDS, &WORDS).contains(&last)
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

/// `s` with every key-shaped run cut: the prefix (`mcp_live_`/`mcp_test_`, in any
/// case) followed by base62 characters. A run as long as a key's body or longer keeps
/// its 16-character display prefix (public: it names the key); a shorter run of 8 or
/// more, a piece of a key, keeps only the prefix, since its own characters would help
/// to rebuild the key from its other pieces. Each cut run ends in `[redacted]`.
pub fn text(s: &str) -> String {
    let lowered = s.to_ascii_lowercase(); // same byte offsets as `s`
    if !lowered.contains("mcp_live_") && !lowered.contains("mcp_test_") {
        return s.to_string();
    }
    const PREFIX: usize = 9;
    let body = key::KEY_LEN - PREFIX;
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    while let Some(at) = find_prefix(&lowered[from..]).map(|a| from + a) {
        out.push_str(&s[from..at]);
        let tail = s[at + PREFIX..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let kept = match tail {
            t if t >= body => key::DISPLAY_PREFIX_LEN,
            t if t >= 8 => PREFIX,
            t => PREFIX + t,
        };
        out.push_str(&s[at..at + kept]);
        if kept < PREFIX + tail {
            out.push_str(REDACTED);
        }
        from = at + PREFIX + tail;
    }
    out.push_str(&s[from..]);
    out
}

fn find_prefix(s: &str) -> Option<usize> {
    match (s.find("mcp_live_"), s.find("mcp_test_")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A PostgreSQL data exception's message without the values it quotes:
/// `date/time field value out of range: "2025-99-31"` becomes
/// `date/time field value out of range`, and `value "3000000000" is out of range
/// for type integer` becomes `value [value] is out of range for type integer`.
pub fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find('"') {
        let Some(close) = rest[open + 1..].find('"') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str("[value]");
        rest = &rest[open + 1 + close + 1..];
    }
    out.push_str(rest);
    out.strip_suffix(": [value]")
        .map(str::to_string)
        .unwrap_or(out)
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
        for name in [
            "status",
            "limit",
            "job_id",
            "author",
            "description",
            "key_id",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn secret_names_of_the_fuller_list_and_in_disguise() {
        for name in [
            "pwd",
            "passphrase",
            "auth",
            "x-auth",
            "cookie",
            "Set-Cookie",
            "key",
            "secretKey",
            "user_pin",
            "p\u{0430}ssword",  // Cyrillic а
            "\u{FF50}assword",  // full-width p
            "pa\u{200B}ssword", // a zero-width space inside
            "\u{0440}wd",       // Cyrillic р for p
            "T\u{043E}ken",     // Cyrillic о
        ] {
            assert!(is_secret_name(name), "{name:?}");
        }
    }

    #[test]
    fn key_shapes_in_any_case_and_in_pieces() {
        let k = key::generate(key::Environment::Live);
        let upper = k.to_ascii_uppercase();
        let out = text(&format!("key {upper}!"));
        assert_eq!(out, format!("key {}{REDACTED}!", &upper[..16]));
        // A piece of a key: the prefix and 8 or more characters keep only the prefix.
        let piece = &k[..9 + 20];
        assert_eq!(text(piece), format!("{}{REDACTED}", &k[..9]));
        assert_eq!(text(&k[..9 + 8]), format!("{}{REDACTED}", &k[..9]));
        // Fewer than 8 characters after the prefix name nothing.
        assert_eq!(text(&k[..9 + 7]), &k[..9 + 7]);
        let j = json(&json!({"a": &k[..30], "b": k.to_ascii_lowercase()})).to_string();
        assert!(!j.contains(&k[9..30]), "{j}");
    }

    #[test]
    fn data_exception_messages_lose_their_values() {
        assert_eq!(
            without_values("date/time field value out of range: \"2025-99-31\""),
            "date/time field value out of range"
        );
        assert_eq!(
            without_values("value \"3000000000\" is out of range for type integer"),
            "value [value] is out of range for type integer"
        );
        assert_eq!(without_values("division by zero"), "division by zero");
    }

    #[test]
    fn nested_properties_are_redacted() {
        let args = json!({
            "status": "in_progress",
            "limit": 50,
            "headers": {"Authorization": "Bearer abc", "nested": [{"apiKey": "x"}, {"ok": 1}]},
            "password": {"even": "objects"},
        });
        let out = json(&args);
        assert_eq!(out["status"], "in_progress");
        assert_eq!(out["limit"], 50);
        assert_eq!(out["headers"]["Authorization"], REDACTED);
        assert_eq!(out["headers"]["nested"][0]["apiKey"], REDACTED);
        assert_eq!(out["headers"]["nested"][1]["ok"], 1);
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
