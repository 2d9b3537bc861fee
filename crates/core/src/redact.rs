//! What may never be stored or sent: values of properties whose name looks like a
//! secret, and anything shaped like an MCP key. Applied to tool arguments, error
//! messages and server-log text before they reach a table or a notification.

use crate::key;
use crate::token;
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
    "privkey",
    "signingkey",
    "passkey",
    "pincode",
    "authcode",
    "jwt",
];

/// Words that mark a secret as a name's last word (`key`, `x-auth`, `user_pin`, but
/// not `key_id` or `author`), too short to look for inside other words.
const SECRET_WORDS: &[&str] = &["key", "auth", "pin", "otp", "pass", "sid", "cvv", "cvc"];

/// Words that mark a secret wherever they stand in a name (`otp_code`).
const SECRET_ANYWHERE: &[&str] = &["otp", "pwd", "cvv", "cvc", "pin"];

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
    static ANYWHERE: OnceLock<Vec<String>> = OnceLock::new();
    // Trailing digits name a copy (`user_pin2`, `signing_key_1`), not another thing.
    let words: Vec<String> = words(name)
        .iter()
        .map(|w| fold(w.trim_end_matches(|c: char| c.is_ascii_digit())))
        .filter(|w| !w.is_empty())
        .collect();
    let anywhere = folded(SECRET_ANYWHERE, &ANYWHERE);
    words
        .last()
        .is_some_and(|w| folded(SECRET_WORDS, &WORDS).contains(w))
        || words.iter().any(|w| anywhere.contains(w))
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
        Value::String(s) => {
            // JSON inside a string (a serialised object) is redacted as JSON.
            let t = s.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(s)
                {
                    return Value::String(json(&inner).to_string());
                }
            }
            Value::String(text(s))
        }
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

/// Format characters that show nothing (zero-width space and joiners, soft hyphen,
/// bidirectional marks, variation selectors, tags): dropped before comparing, so
/// that none can split a key's shape.
fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1BCA0..=0x1BCA3 | 0xE0000..=0xE0FFF)
}

/// The text as it is searched: each character NFKC-folded (full-width letters
/// become ASCII), invisible ones dropped, each with the byte range it came from.
fn view(s: &str) -> Vec<(char, usize, usize)> {
    let mut out = Vec::with_capacity(s.len());
    for (at, c) in s.char_indices() {
        if invisible(c) {
            continue;
        }
        let end = at + c.len_utf8();
        if c.is_ascii() {
            out.push((c, at, end));
        } else {
            out.extend(c.to_string().nfkc().map(|n| (n, at, end)));
        }
    }
    out
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Where a key prefix (`mcp`, a separator, `live` or `test`, a separator; any case)
/// or an OAuth secret's (`at`, `rt` or `ac` in its place) starts at `i` of the view:
/// the index just after it, and how long the body after it is.
fn prefix_at(v: &[(char, usize, usize)], i: usize) -> Option<(usize, usize)> {
    let word = |at: usize, w: &str| {
        w.chars()
            .enumerate()
            .all(|(k, c)| v.get(at + k).is_some_and(|x| x.0.eq_ignore_ascii_case(&c)))
    };
    let sep = |at: usize| {
        v.get(at)
            .is_some_and(|x| !alnum(x.0) && !x.0.is_whitespace())
    };
    if i > 0 && alnum(v[i - 1].0) {
        return None;
    }
    let environment = key::Environment::ALL
        .iter()
        .any(|e| word(i + 4, e.as_str()));
    if word(i, "mcp") && sep(i + 3) && environment && sep(i + 8) {
        return Some((i + 9, key::KEY_LEN - 9));
    }
    let secret = ["at", "rt", "ac"].iter().any(|k| word(i + 4, k));
    (word(i, "mcp") && sep(i + 3) && secret && sep(i + 6)).then_some((i + 7, token::TOKEN_LEN - 7))
}

/// A key's body (its 38 characters after the prefix) standing alone: its checksum
/// says so, whatever surrounds it.
fn is_body(w: &str) -> bool {
    let (random, sum) = w.split_at(key::RANDOM_LEN);
    let mut buf = [0u8; 9 + key::RANDOM_LEN];
    buf[9..].copy_from_slice(random.as_bytes());
    key::Environment::ALL.iter().any(|e| {
        buf[..9].copy_from_slice(e.prefix().as_bytes());
        key::checksum(std::str::from_utf8(&buf).expect("ASCII")) == sum
    })
}

/// `s` with every key-shaped text cut. A key prefix (`mcp_live_`/`mcp_test_`, in any
/// case, any separator, full-width or with invisible characters inside) followed by
/// 8 or more base62 characters, even split by a few separators, is cut to the prefix;
/// a whole key, written plainly, keeps its 16-character display prefix (public: it
/// names the key). A key's body alone (its checksum matches) is cut whole. Each cut
/// ends in `[redacted]`: better one redaction too many than a leak.
pub fn text(s: &str) -> String {
    let lowered = s.to_ascii_lowercase();
    let suspicious = lowered.contains("mcp")
        || s.bytes().any(|b| b >= 0x80)
        || s.bytes().filter(u8::is_ascii_alphanumeric).count() >= key::KEY_LEN - 9;
    if !suspicious {
        return s.to_string();
    }
    let v = view(s);
    let body_len = key::KEY_LEN - 9;
    // Byte ranges of the original to replace, and what to keep of each.
    let mut cuts: Vec<(usize, usize, usize)> = Vec::new(); // start, end, bytes kept
    let mut i = 0;
    while i < v.len() {
        let Some((after, body_len)) = prefix_at(&v, i) else {
            i += 1;
            continue;
        };
        // Key material: base62 characters, across at most 3 short gaps.
        let (mut j, mut taken, mut gaps, mut first_run, mut end) = (after, 0, 0, None, after);
        while j < v.len() && taken < body_len {
            if alnum(v[j].0) {
                taken += 1;
                j += 1;
                end = j;
                continue;
            }
            first_run.get_or_insert(taken);
            let gap = (j..v.len().min(j + 3))
                .take_while(|&k| !alnum(v[k].0))
                .count();
            if gap == 0 || gap > 2 || gaps == 3 || j + gap >= v.len() || !alnum(v[j + gap].0) {
                break;
            }
            gaps += 1;
            j += gap;
        }
        let first_run = first_run.unwrap_or(taken);
        if taken >= 8 {
            let written = &s[v[i].1..v[after - 1].2];
            let plain = key::Environment::ALL
                .iter()
                .any(|e| written.eq_ignore_ascii_case(e.prefix()));
            // A whole key keeps its display prefix; an OAuth secret keeps only its kind.
            let keep = if plain && taken >= body_len && first_run >= 7 {
                v[after + 6].2 - v[i].1
            } else {
                v[after - 1].2 - v[i].1
            };
            cuts.push((v[i].1, v[end - 1].2, keep));
        }
        i = end.max(i + 1);
    }
    // Bodies standing alone, in runs of base62 outside the cuts.
    let mut k = 0;
    while k < v.len() {
        if !alnum(v[k].0) {
            k += 1;
            continue;
        }
        let run_end = (k..v.len()).find(|&x| !alnum(v[x].0)).unwrap_or(v.len());
        if run_end - k >= body_len {
            let run: String = v[k..run_end].iter().map(|x| x.0).collect();
            let mut w = 0;
            while w + body_len <= run.len() {
                if is_body(&run[w..w + body_len]) {
                    let (from, to) = (v[k + w].1, v[k + w + body_len - 1].2);
                    if !cuts.iter().any(|c| from < c.1 && to > c.0) {
                        cuts.push((from, to, 0));
                    }
                    w += body_len;
                } else {
                    w += 1;
                }
            }
        }
        k = run_end;
    }
    if cuts.is_empty() {
        return s.to_string();
    }
    cuts.sort();
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (from, to, keep) in cuts {
        if from < at {
            continue;
        }
        out.push_str(&s[at..from + keep]);
        out.push_str(REDACTED);
        at = to;
    }
    out.push_str(&s[at..]);
    out
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
    fn keys_split_disguised_or_bare_are_cut() {
        let k = key::generate(key::Environment::Live);
        let body = &k[9..];
        for (input, leaked) in [
            (format!("body:{body}"), body.to_string()),
            (format!("x{body}"), body.to_string()),
            (format!("{}-{}", &k[..17], &k[17..]), k[17..].to_string()),
            (format!("{} {}", &k[..16], &k[16..]), k[16..].to_string()),
            (format!("mcp_live_\u{200B}{body}"), body[7..].to_string()),
            (format!("ｍｃｐ＿ｌｉｖｅ＿{body}"), body[7..].to_string()),
            (format!("mcp-live-{body}"), body[7..].to_string()),
            (
                format!("k={body} {}.{}", &k[..20], &k[20..]),
                k[20..].to_string(),
            ),
        ] {
            let out = text(&input);
            assert!(!out.contains(&leaked), "{input:?} -> {out:?}");
            assert!(out.contains(REDACTED), "{input:?} -> {out:?}");
        }
        // Ordinary text and long ordinary runs stay.
        let plain = "job J-1001 for Globex, 3 parts, operator Ana";
        assert_eq!(text(plain), plain);
        let long = "a".repeat(100);
        assert_eq!(text(&long), long);
    }

    #[test]
    fn more_secret_names_and_json_in_strings() {
        for name in [
            "privkey",
            "signingkey",
            "passkey",
            "pincode",
            "authcode",
            "otp_code",
            "user_pin2",
            "signing_key_1",
            "jwt",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["key_id", "author", "status", "limit", "job_id"] {
            assert!(!is_secret_name(name), "{name}");
        }
        let out = json(&json!({"x": "{\"password\": \"S9\"}"})).to_string();
        assert!(!out.contains("S9"), "{out}");
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
    fn oauth_secrets_keep_only_their_kind() {
        for kind in token::Kind::ALL {
            let secret = token::generate(kind);
            let out = text(&format!("token={secret}; next"));
            assert_eq!(
                out,
                format!("token={}{REDACTED}; next", kind.prefix()),
                "{out}"
            );
            let spaced = text(&format!("{} {}", &secret[..7].to_uppercase(), &secret[7..]));
            assert!(!spaced.contains(&secret[7..20]), "{spaced}");
        }
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
