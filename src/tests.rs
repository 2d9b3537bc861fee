//! In-process tests (`cargo pgrx test`): what is easiest to see from inside the
//! backend (bcrypt work per validation, the cache, stored columns). Role-based and
//! transaction-boundary tests are SQL, in tests/regress.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    const TENANT: &str = "00000000-0000-0000-0000-0000000000a1";

    fn new_key(name: &str) -> (String, String) {
        let (id, key) = Spi::get_two::<pgrx::Uuid, String>(&format!(
            "SELECT key_id, api_key FROM generate_mcp_key('{TENANT}', '{name}')"
        ))
        .unwrap();
        (id.unwrap().to_string(), key.unwrap())
    }

    fn bcrypt_count() -> i64 {
        Spi::get_one::<i64>("SELECT bcrypt_verifications FROM mcp_auth_backend_stats()")
            .unwrap()
            .unwrap()
    }

    /// The check behind validate_mcp_key, without raising (a raised ERROR would
    /// abort the test's transaction).
    fn validates(key: &str) -> bool {
        crate::keys::validate::authenticate(key).is_ok()
    }

    /// The key's checksum rule (docs/sql-api.md, "The key"), written independently of mcp_auth_core.
    fn checksum_by_the_rule(body: &str) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        // Bitwise CRC-32 (IEEE, reflected polynomial 0xEDB88320).
        let mut crc: u32 = !0;
        for &b in body.as_bytes() {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        let mut n = !crc as u64;
        let mut s = Vec::new();
        while n > 0 {
            s.insert(0, ALPHABET[(n % 62) as usize]);
            n /= 62;
        }
        while s.len() < 6 {
            s.insert(0, b'0');
        }
        String::from_utf8(s).unwrap()
    }

    #[pg_test]
    fn generated_key_matches_the_public_format() {
        Spi::run("SET mcp_auth.bcrypt_cost = 4").unwrap();
        for env in ["live", "test"] {
            let key = Spi::get_one::<String>(&format!(
                "SELECT api_key FROM generate_mcp_key('{TENANT}', 'fmt {env}', p_environment := '{env}')"
            ))
            .unwrap()
            .unwrap();
            assert_eq!(key.len(), 47);
            assert!(key.starts_with(&format!("mcp_{env}_")));
            assert!(key[9..].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(&key[41..], checksum_by_the_rule(&key[..41]));
        }
    }

    #[pg_test]
    fn unknown_keys_cost_no_bcrypt_and_known_keys_at_most_one() {
        Spi::run("SET mcp_auth.bcrypt_cost = 4").unwrap();
        let (_, key) = new_key("counted");
        let before = bcrypt_count();
        // Well-formed but unknown: found by nobody, verified by nobody.
        let unknown = mcp_auth_core::key::generate(mcp_auth_core::Environment::Live);
        assert!(!validates(&unknown));
        assert_eq!(bcrypt_count(), before);
        assert!(validates(&key));
        assert_eq!(bcrypt_count(), before + 1);
        assert!(validates(&key));
        assert!(validates(&key));
        assert_eq!(
            bcrypt_count(),
            before + 1,
            "repeat validations hit the cache"
        );
    }

    #[pg_test]
    fn a_cached_key_is_refused_as_soon_as_it_is_disabled() {
        Spi::run("SET mcp_auth.bcrypt_cost = 4").unwrap();
        let (id, key) = new_key("cached");
        assert!(validates(&key));
        assert!(
            Spi::get_one::<bool>(&format!("SELECT disable_mcp_key('{id}')"))
                .unwrap()
                .unwrap()
        );
        assert!(!validates(&key));
        Spi::run(&format!("SELECT enable_mcp_key('{id}')")).unwrap();
        assert!(validates(&key));
        Spi::run(&format!(
            "UPDATE mcp_authentication_keys SET expires_at = now() WHERE id = '{id}'"
        ))
        .unwrap();
        assert!(!validates(&key));
    }

    #[pg_test]
    fn bcrypt_cost_setting_applies_to_new_keys() {
        Spi::run("SET mcp_auth.bcrypt_cost = 5").unwrap();
        let (id, _) = new_key("cost five");
        let hash = Spi::get_one::<String>(&format!(
            "SELECT key_hash FROM mcp_authentication_keys WHERE id = '{id}'"
        ))
        .unwrap()
        .unwrap();
        assert!(hash.starts_with("$2b$05$"), "{hash}");
    }

    #[pg_test(
        error = "32 is outside the valid range for parameter \"mcp_auth.bcrypt_cost\" (4 .. 31)"
    )]
    fn bcrypt_cost_is_bounded() {
        Spi::run("SET mcp_auth.bcrypt_cost = 32").unwrap();
    }

    #[pg_test]
    fn the_key_is_stored_nowhere() {
        Spi::run("SET mcp_auth.bcrypt_cost = 4").unwrap();
        let (id, key) = new_key("secret");
        assert!(validates(&key));
        let rows = Spi::get_one_with_args::<i64>(
            "SELECT (SELECT count(*) FROM mcp_authentication_keys k WHERE k::text LIKE '%' || $1 || '%')
                  + (SELECT count(*) FROM mcp_key_usage_counters c WHERE c::text LIKE '%' || $1 || '%')",
            &[key.as_str().into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(rows, 0);
        let (prefix, lookup) = Spi::get_two::<String, String>(&format!(
            "SELECT key_prefix, lookup_hash FROM mcp_authentication_keys WHERE id = '{id}'"
        ))
        .unwrap();
        assert_eq!(prefix.unwrap(), &key[..16]);
        assert_eq!(lookup.unwrap(), mcp_auth_core::key::lookup_digest(&key));
    }

    #[pg_test]
    fn permission_patterns() {
        Spi::run("SET mcp_auth.bcrypt_cost = 4").unwrap();
        let id = Spi::get_one::<pgrx::Uuid>(&format!(
            "SELECT key_id FROM generate_mcp_key('{TENANT}', 'ro',
                 p_allowed_tools := '[\"fetch_*\", \"get_dashboard_stats\"]')"
        ))
        .unwrap()
        .unwrap();
        // A superuser may ask about any key.
        let allowed = |tool: &str| {
            Spi::get_one::<bool>(&format!(
                "SELECT check_mcp_tool_permission('{id}', '{tool}')"
            ))
            .unwrap()
            .unwrap()
        };
        assert!(allowed("fetch_jobs"));
        assert!(allowed("get_dashboard_stats"));
        assert!(!allowed("create_job"));
        assert!(!allowed("get_dashboard"));
        let unknown = Spi::get_one::<bool>(
            "SELECT check_mcp_tool_permission(gen_random_uuid(), 'fetch_jobs')",
        )
        .unwrap();
        assert_eq!(unknown, Some(false));
        let null_tool =
            Spi::get_one::<bool>(&format!("SELECT check_mcp_tool_permission('{id}', NULL)"))
                .unwrap();
        assert_eq!(null_tool, Some(false));
    }
}
