//! Key format (a public contract; secret scanners depend on it):
//! `mcp_<env>_<32 random base62 chars><6-char checksum>`, 47 characters.
//! The checksum is CRC-32 (IEEE) of everything before it, in base62
//! (`0-9A-Za-z`), left-padded with `0` to 6 characters.

use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// Total length of a key.
pub const KEY_LEN: usize = 47;
/// Number of random characters after `mcp_<env>_`.
pub const RANDOM_LEN: usize = 32;
/// Number of checksum characters at the end.
pub const CHECKSUM_LEN: usize = 6;
/// Length of the display prefix (`key_prefix`), safe to show and to log.
pub const DISPLAY_PREFIX_LEN: usize = 16;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The two key environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    /// Every environment, in the order keys are documented.
    pub const ALL: [Environment; 2] = [Environment::Live, Environment::Test];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(Self::Live),
            "test" => Some(Self::Test),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }

    /// What every key of this environment starts with (`mcp_live_`, `mcp_test_`).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Live => "mcp_live_",
            Self::Test => "mcp_test_",
        }
    }
}

/// Why a presented string is not a well-formed key. Never shown to a client
/// (every failure there reads `Invalid or disabled MCP key`); useful in audit rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormatError {
    Length,
    Prefix,
    Alphabet,
    Checksum,
}

impl KeyFormatError {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Length => "malformed key: wrong length",
            Self::Prefix => "malformed key: prefix is not mcp_live_ or mcp_test_",
            Self::Alphabet => "malformed key: character outside 0-9A-Za-z",
            Self::Checksum => "malformed key: checksum mismatch",
        }
    }
}

/// A key whose format and checksum are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub key: &'a str,
    pub environment: Environment,
}

impl<'a> ParsedKey<'a> {
    /// The first 16 characters: safe to display and log.
    pub fn display_prefix(&self) -> &'a str {
        &self.key[..DISPLAY_PREFIX_LEN]
    }
}

/// CRC-32 (IEEE) of `body`, in base62, left-padded with `0` to 6 characters.
pub fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    // 62^6 > 2^32, so six digits always suffice.
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// A new key from the operating system's CSPRNG. Reading the OS source directly
/// (not a thread-local generator) keeps forked PostgreSQL backends independent.
pub fn generate(environment: Environment) -> String {
    let mut rng = OsRng.unwrap_err();
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(environment.prefix());
    // `Alphanumeric` is exactly [0-9A-Za-z], sampled uniformly by rejection.
    Alphanumeric.append_string(&mut rng, &mut key, RANDOM_LEN);
    let sum = checksum(&key);
    key.push_str(&sum);
    key
}

/// Checks length, prefix, alphabet and checksum, in that order; reads no table.
pub fn parse(key: &str) -> Result<ParsedKey<'_>, KeyFormatError> {
    if key.len() != KEY_LEN {
        return Err(KeyFormatError::Length);
    }
    let environment = if key.starts_with(Environment::Live.prefix()) {
        Environment::Live
    } else if key.starts_with(Environment::Test.prefix()) {
        Environment::Test
    } else {
        return Err(KeyFormatError::Prefix);
    };
    let tail = &key[environment.prefix().len()..];
    if !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Alphabet);
    }
    let (body, sum) = key.split_at(KEY_LEN - CHECKSUM_LEN);
    if checksum(body) != sum {
        return Err(KeyFormatError::Checksum);
    }
    Ok(ParsedKey { key, environment })
}

/// Hex SHA-256 of the whole key: the indexed lookup value stored beside the bcrypt verifier.
pub fn lookup_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// True when `s` could be mistaken for a key by shape alone (used to keep keys out of logs).
pub fn looks_like_key(s: &str) -> bool {
    s.len() == KEY_LEN
        && (s.starts_with("mcp_live_") || s.starts_with("mcp_test_"))
        && s[9..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent base62 of a u32, written differently from `checksum`.
    fn base62_ref(mut n: u32) -> String {
        let mut digits = Vec::new();
        while n > 0 {
            digits.push(BASE62[(n % 62) as usize] as char);
            n /= 62;
        }
        let s: String = digits.into_iter().rev().collect();
        format!("{s:0>6}")
    }

    #[test]
    fn generated_keys_have_the_contract_shape() {
        for env in [Environment::Live, Environment::Test] {
            let key = generate(env);
            assert_eq!(key.len(), 47);
            assert!(key.starts_with(&format!("mcp_{}_", env.as_str())));
            assert!(key[9..].bytes().all(|b| b.is_ascii_alphanumeric()));
            let parsed = parse(&key).expect("a fresh key parses");
            assert_eq!(parsed.environment, env);
            assert_eq!(parsed.display_prefix(), &key[..16]);
        }
    }

    #[test]
    fn checksum_is_crc32_in_padded_base62() {
        assert_eq!(checksum(""), "000000"); // crc32("") == 0
        for body in [
            "mcp_live_",
            "mcp_test_abc",
            "mcp_live_0123456789abcdefghijABCDEFGHIJ01",
        ] {
            assert_eq!(checksum(body), base62_ref(crc32fast::hash(body.as_bytes())));
        }
        assert_eq!(base62_ref(u32::MAX), "4gfFC3"); // the largest value still fits in six digits
        assert_eq!(checksum(&"x".repeat(3)).len(), 6);
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let key = generate(Environment::Live);
        for i in 9..KEY_LEN {
            let mut bytes = key.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(
                parse(&changed),
                Err(KeyFormatError::Checksum),
                "position {i}"
            );
        }
    }

    #[test]
    fn malformed_keys_name_their_fault() {
        let key = generate(Environment::Test);
        assert_eq!(parse(&key[..46]), Err(KeyFormatError::Length));
        assert_eq!(parse(""), Err(KeyFormatError::Length));
        assert_eq!(
            parse(&key.replacen("mcp_test_", "mcp_prod_", 1)),
            Err(KeyFormatError::Prefix)
        );
        let mut bad = key.clone();
        bad.replace_range(20..21, "-");
        assert_eq!(parse(&bad), Err(KeyFormatError::Alphabet));
        // Multi-byte input of the right byte length must not panic on slicing.
        let odd = format!("mcp_live_{}", "é".repeat(19));
        assert_eq!(odd.len(), 47);
        assert_eq!(parse(&odd), Err(KeyFormatError::Alphabet));
    }

    #[test]
    fn keys_are_not_repeated() {
        let keys: std::collections::HashSet<String> =
            (0..2000).map(|_| generate(Environment::Live)).collect();
        assert_eq!(keys.len(), 2000);
    }

    #[test]
    fn lookup_digest_is_hex_sha256() {
        assert_eq!(
            lookup_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn looks_like_key_matches_only_the_shape() {
        assert!(looks_like_key(&generate(Environment::Live)));
        assert!(!looks_like_key("mcp_live_short"));
        assert!(!looks_like_key(&format!("xcp_live_{}", "a".repeat(38))));
    }
}
