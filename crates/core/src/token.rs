//! OAuth secrets (`mcp-auth serve --oauth-issuer`): authorization codes, access and
//! refresh tokens. Shaped like keys, so a bad one is refused before any table is
//! read and secret scanners can tell them: `mcp_<kind>_<40 random base62><6-char
//! checksum>`, 53 characters, kind `ac` (code), `at` (access) or `rt` (refresh).
//! The checksum is the key format's (CRC-32 in base62). Stored only as SHA-256.

use crate::key::checksum;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

pub const TOKEN_LEN: usize = 53;
const RANDOM_LEN: usize = 40;
const PREFIX_LEN: usize = 7;

/// What a secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Code,
    Access,
    Refresh,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Code, Kind::Access, Kind::Refresh];

    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Code => "mcp_ac_",
            Kind::Access => "mcp_at_",
            Kind::Refresh => "mcp_rt_",
        }
    }

    /// The name stored beside the digest.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Code => "code",
            Kind::Access => "access",
            Kind::Refresh => "refresh",
        }
    }
}

/// A new secret from the operating system's CSPRNG (as keys are made).
pub fn generate(kind: Kind) -> String {
    let mut rng = OsRng.unwrap_err();
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(kind.prefix());
    Alphanumeric.append_string(&mut rng, &mut token, RANDOM_LEN);
    let sum = checksum(&token);
    token.push_str(&sum);
    token
}

/// The kind of a well-formed secret (length, prefix, alphabet, checksum); reads no table.
pub fn parse(token: &str) -> Option<Kind> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let kind = Kind::ALL
        .into_iter()
        .find(|k| token.starts_with(k.prefix()))?;
    if !token[PREFIX_LEN..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let (body, sum) = token.split_at(TOKEN_LEN - 6);
    (checksum(body) == sum).then_some(kind)
}

/// Hex SHA-256 of the whole secret: all that is stored of it.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// PKCE (RFC 7636), S256 only: the verifier is 43 to 128 unreserved characters and
/// its SHA-256, in unpadded base64url, is the challenge.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    shaped && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// Whether `challenge` can be an S256 challenge: 43 base64url characters.
pub fn is_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

const CLIENT_PREFIX: &str = "mcp_client_";
const CLIENT_RANDOM: usize = 24;

/// A new client_id for a registered client (RFC 7591): not a secret, only unique.
pub fn client_id() -> String {
    let mut rng = OsRng.unwrap_err();
    let mut id = String::from(CLIENT_PREFIX);
    Alphanumeric.append_string(&mut rng, &mut id, CLIENT_RANDOM);
    id
}

/// Whether `id` is shaped like a registered client's id (`client_id` makes them).
pub fn is_client_id(id: &str) -> bool {
    id.len() == CLIENT_PREFIX.len() + CLIENT_RANDOM
        && id.starts_with(CLIENT_PREFIX)
        && id[CLIENT_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// Why `uri` may not be a redirect URI, if it may not: an https URL; http only to a
/// loopback host (a native app's listener, RFC 8252); or an app's private scheme.
/// Never a fragment, spaces, or a scheme a browser would run.
pub fn redirect_uri_problem(uri: &str) -> Option<&'static str> {
    if uri.is_empty() || uri.len() > 2000 {
        return Some("must be 1 to 2000 characters");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) || uri.contains('#') {
        return Some("must have no spaces, control characters or fragment");
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Some("must be an absolute URI");
    };
    let scheme = scheme.to_ascii_lowercase();
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !valid_scheme {
        return Some("must be an absolute URI");
    }
    match scheme.as_str() {
        "https" | "http" => {
            let Some(authority) = rest.strip_prefix("//") else {
                return Some("must be an absolute URI");
            };
            let authority = authority.split(['/', '?']).next().unwrap_or("");
            if authority.is_empty() || authority.contains('@') {
                return Some("must name a host, without user information");
            }
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
            };
            let loopback = matches!(
                host.to_ascii_lowercase().as_str(),
                "localhost" | "127.0.0.1" | "::1"
            );
            // A host name or an address, nothing else (the origin goes into a
            // Content-Security-Policy, where `;` would start a directive).
            let plain = if authority.starts_with('[') {
                host.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            } else {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            };
            let port_ok = match authority.strip_prefix('[') {
                Some(v6) => v6.split_once(']').is_some_and(|(_, p)| {
                    p.is_empty()
                        || p.strip_prefix(':')
                            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                }),
                None => authority
                    .rsplit_once(':')
                    .is_none_or(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
            };
            if !plain || !port_ok {
                return Some(
                    "must name a host by letters, digits, dots, dashes and underscores, or an address",
                );
            }
            (scheme == "http" && !loopback)
                .then_some("must use https (http only to localhost, 127.0.0.1 or [::1])")
        }
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "ftp" | "ws" | "wss" => {
            Some("must use https, http to a loopback host, or an app's own scheme")
        }
        _ => None,
    }
}

/// A character that may not be in a name a user must read: a control, a line or
/// paragraph separator, or one that turns or isolates the direction of the text
/// after it (which can make the words around a name read backwards). Joiners,
/// variation selectors and direction marks stay: emoji, Persian and Hebrew names
/// need them, and the consent page isolates every name.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x2028 | 0x2029 | 0x202A..=0x202E | 0x2066..=0x2069 | 0xFFF9..=0xFFFB | 0xE0000..=0xE007F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_shape_and_kind() {
        for kind in Kind::ALL {
            let t = generate(kind);
            assert_eq!(t.len(), TOKEN_LEN);
            assert_eq!(parse(&t), Some(kind));
            let mut changed = t.clone().into_bytes();
            changed[20] = if changed[20] == b'a' { b'b' } else { b'a' };
            assert_eq!(parse(std::str::from_utf8(&changed).unwrap()), None);
        }
        assert_eq!(parse("mcp_live_x"), None);
        assert_ne!(generate(Kind::Access), generate(Kind::Access));
    }

    #[test]
    fn redirect_uris_follow_oauth_2_1() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost:6274/oauth/callback?x=1",
            "http://[::1]:8080/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
        ] {
            assert_eq!(redirect_uri_problem(ok), None, "{ok}");
        }
        for bad in [
            "http://evil.example/cb",
            "https://a.example/cb#frag",
            "javascript:alert(1)",
            "https://user@a.example/cb",
            "https://a;script-src/cb",
            "https://a.example:80x/cb",
            "https://a\u{202e}b.example/cb",
            "/relative",
            "https://a.example/c b",
            "",
            "http://localhost.evil.example/cb",
        ] {
            assert!(redirect_uri_problem(bad).is_some(), "{bad}");
        }
        assert!(is_client_id(&client_id()) && !is_client_id("mcp_client_unknown"));
        assert!(is_hidden('\u{202e}') && is_hidden('\u{2066}') && is_hidden('\n'));
        for fine in [
            "é", "Ω", " ", "\u{fe0f}", "\u{200d}", "\u{200c}", "\u{200f}",
        ] {
            assert!(!fine.chars().any(is_hidden), "{fine:?}");
        }
    }

    #[test]
    fn pkce_s256_is_rfc_7636_appendix_b() {
        // The RFC's own example.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(&verifier[1..], challenge), "too short");
        assert!(!pkce_matches(&verifier.replace('d', "e"), challenge));
    }
}
