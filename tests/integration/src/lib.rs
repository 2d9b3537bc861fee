//! Helpers for the client-side tests: connections to the database named by
//! `MCP_AUTH_TEST_URL` (scripts/integration.sh starts a private cluster for it),
//! and fresh tenants and keys so that tests running in parallel never share rows.

use postgres::{Client, NoTls};

pub fn url() -> String {
    std::env::var("MCP_AUTH_TEST_URL")
        .expect("MCP_AUTH_TEST_URL: run these tests through scripts/integration.sh")
}

/// A superuser connection (the private test cluster trusts local connections).
pub fn connect() -> Client {
    Client::connect(&url(), NoTls).expect("connect to the test database")
}

/// A connection as another login role.
pub fn connect_as(role: &str) -> Client {
    Client::connect(&format!("{} user={role}", url()), NoTls).expect("connect as role")
}

/// A new random tenant id, as text.
pub fn tenant() -> String {
    let bytes: [u8; 16] = rand::random();
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A key for `tenant` (bcrypt cost 4: these tests measure behaviour, not hashing).
pub fn key(db: &mut Client, tenant: &str, name: &str, rate_limit: i32) -> (String, String) {
    db.batch_execute("SET mcp_auth.bcrypt_cost = 4").unwrap();
    let row = db
        .query_one(
            "SELECT key_id::text, api_key FROM generate_mcp_key($1::text::uuid, $2, p_rate_limit := $3)",
            &[&tenant, &name, &rate_limit],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

/// Runs `each(i)` for i in 0..n on n threads at once and gathers what they return.
pub fn in_parallel<T: Send>(n: usize, each: impl Fn(usize) -> Vec<T> + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let each = &each;
        let threads: Vec<_> = (0..n).map(|i| s.spawn(move || each(i))).collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    })
}

/// A superuser connection to a database with mcp_mes (and so mcp_auth) installed.
pub fn with_mes() -> Client {
    let mut db = connect();
    db.batch_execute("CREATE EXTENSION IF NOT EXISTS mcp_mes")
        .unwrap();
    db
}

/// Drops database `name` (whoever is connected) and creates it empty.
pub fn fresh_database(name: &str) {
    let mut admin = connect();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
}

/// `call_tool(key, 'fetch_jobs', arguments)`, its envelope as text.
pub fn fetch_jobs(db: &mut Client, key: &str, arguments: &str) -> String {
    db.query_one(
        "SELECT call_tool($1, 'fetch_jobs', $2::text::jsonb)::text",
        &[&key, &arguments],
    )
    .unwrap()
    .get(0)
}
