//! The ledger, as a key holder with an `mcp_client` login tries to get results
//! without their audit rows and charges: over the wire protocol with a suspended
//! portal and a disconnect, by rolling back a write, and while the ledger cannot
//! write or its writer is killed.

use mcp_auth_integration::{connect, connect_as, fetch_jobs, key, tenant, url, with_mes};
use postgres::Client;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A login role that is only a member of mcp_client.
fn client_role(db: &mut Client, name: &str) -> Client {
    db.batch_execute(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
             CREATE ROLE {name} LOGIN IN ROLE mcp_client; END IF; END $$"
    ))
    .unwrap();
    connect_as(name)
}

fn setting(url: &str, name: &str) -> String {
    url.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("MCP_AUTH_TEST_URL has no {name}"))
        .to_string()
}

/// A frontend message: type byte, length, body.
fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Reads one backend message: its type and body.
fn read_message(s: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).unwrap();
    (head[0], body)
}

/// One call through the extended protocol: Parse, Bind, Execute with max_rows = 1,
/// Flush; reads the row and PortalSuspended while the transaction is still open,
/// then drops the connection without Sync. Returns the envelope it received.
fn suspended_call(role: &str, api_key: &str) -> String {
    let url = url();
    let path = format!(
        "{}/.s.PGSQL.{}",
        setting(&url, "host"),
        setting(&url, "port")
    );
    let mut s = UnixStream::connect(path).unwrap();
    let mut startup = 196_608u32.to_be_bytes().to_vec();
    for part in ["user", role, "database", &setting(&url, "dbname")] {
        startup.extend(cstr(part));
    }
    startup.push(0);
    let mut first = ((startup.len() + 4) as u32).to_be_bytes().to_vec();
    first.extend(startup);
    s.write_all(&first).unwrap();
    while read_message(&mut s).0 != b'Z' {} // trust: AuthenticationOk, parameters, ReadyForQuery

    let mut parse = cstr("");
    parse.extend(cstr("SELECT call_tool($1, $2, $3::jsonb)::text"));
    parse.extend(0u16.to_be_bytes());
    let mut bind = cstr("");
    bind.extend(cstr(""));
    bind.extend(0u16.to_be_bytes());
    bind.extend(3u16.to_be_bytes());
    for p in [api_key, "fetch_jobs", r#"{"limit": 1}"#] {
        bind.extend((p.len() as u32).to_be_bytes());
        bind.extend(p.as_bytes());
    }
    bind.extend(0u16.to_be_bytes());
    let mut execute = cstr("");
    execute.extend(1u32.to_be_bytes());
    let mut out = message(b'P', &parse);
    out.extend(message(b'B', &bind));
    out.extend(message(b'E', &execute));
    out.extend(message(b'H', &[]));
    s.write_all(&out).unwrap();
    let mut envelope = String::new();
    loop {
        let (kind, body) = read_message(&mut s);
        match kind {
            b'D' => {
                let len = i32::from_be_bytes(body[2..6].try_into().unwrap());
                envelope = String::from_utf8(body[6..6 + len as usize].to_vec()).unwrap();
            }
            b's' => break, // PortalSuspended: the transaction is still open
            b'E' => panic!("the call failed: {}", String::from_utf8_lossy(&body)),
            _ => {}
        }
    }
    drop(s); // a disconnect: the transaction is rolled back
    envelope
}

fn audit_counts(db: &mut Client, key_id: &str) -> (i64, i64) {
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE success), count(*) FROM mcp_key_usage_logs
              WHERE key_id = $1::text::uuid",
            &[&key_id],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn a_suspended_portal_then_a_disconnect_leaves_every_audit_row_and_the_limit() {
    let mut db = connect();
    let t = tenant();
    let (key_id, api_key) = key(&mut db, &t, "Wire", 5);
    db.execute(
        "UPDATE mcp_authentication_keys SET allowed_tools = '[\"fetch_jobs\"]' WHERE id = $1::text::uuid",
        &[&key_id],
    )
    .unwrap();
    let _ = client_role(&mut db, "it_wire");
    let delivered: Vec<String> = (0..12)
        .map(|_| suspended_call("it_wire", &api_key))
        .collect();
    let ok = delivered
        .iter()
        .filter(|e| e.starts_with(r#"{"ok": true"#))
        .count() as i64;
    let limited = delivered
        .iter()
        .filter(|e| e.contains("rate_limit_error"))
        .count() as i64;
    assert_eq!(
        (ok, limited),
        (5, 7),
        "the limit holds over the wire: {delivered:?}"
    );
    assert_eq!(
        audit_counts(&mut db, &key_id),
        (ok, 12),
        "every result delivered has its audit row, though no transaction committed"
    );
}

/// A database with mcp_mes, a new tenant, and its key (id, key): 100 calls a minute.
fn mes_key(name: &str) -> (postgres::Client, String, String, String) {
    let mut db = with_mes();
    let t = tenant();
    let (key_id, api_key) = key(&mut db, &t, name, 100);
    (db, t, key_id, api_key)
}

#[test]
fn a_rolled_back_write_leaves_its_audit_row_with_an_aborted_transaction() {
    let (mut db, t, key_id, api_key) = mes_key("Writer");
    let mut c = client_role(&mut db, "it_writer");
    let mut tx = c.transaction().unwrap();
    let made: String = tx
        .query_one(
            "SELECT call_tool($1, 'create_job', '{\"customer\": \"Rolled back\"}')->>'ok'",
            &[&api_key],
        )
        .unwrap()
        .get(0);
    assert_eq!(made, "true");
    tx.rollback().unwrap();
    let mut tx = c.transaction().unwrap();
    tx.query_one(
        "SELECT call_tool($1, 'create_job', '{\"customer\": \"Committed\"}')->>'ok'",
        &[&api_key],
    )
    .unwrap();
    tx.commit().unwrap();
    c.query_one(
        "SELECT call_tool($1, 'fetch_jobs', '{\"limit\": 1}')",
        &[&api_key],
    )
    .unwrap();

    let jobs: Vec<String> = db
        .query(
            "SELECT customer FROM jobs WHERE tenant_id = $1::text::uuid ORDER BY customer",
            &[&t],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(jobs, ["Committed"], "the rolled-back job is gone");
    let effects: Vec<(String, String)> = db
        .query(
            "SELECT tool_name, COALESCE(pg_xact_status(xact_id), 'no effects')
               FROM mcp_key_usage_logs WHERE key_id = $1::text::uuid ORDER BY created_at",
            &[&key_id],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        effects,
        [
            ("create_job".into(), "aborted".into()),
            ("create_job".into(), "committed".into()),
            ("fetch_jobs".into(), "no effects".into()),
        ],
        "the audit keeps every call and tells which effects committed"
    );
}

#[test]
fn no_result_leaves_while_the_ledger_cannot_write() {
    let (mut db, t, key_id, api_key) = mes_key("Stuck");
    // A superuser holds the log: the writer waits behind it, as with a full disk.
    let mut holder = connect();
    let mut hold = holder.transaction().unwrap();
    hold.batch_execute("LOCK TABLE mcp_key_usage_logs IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut caller = connect();
    caller
        .batch_execute("SET mcp_auth.ledger_timeout = 300")
        .unwrap();
    let first: String = caller
        .query_one(
            "SELECT call_tool($1, 'create_job', '{\"customer\": \"Unaudited\"}')::text",
            &[&api_key],
        )
        .unwrap()
        .get(0);
    assert!(
        first.contains("internal_error") && first.contains("audit ledger"),
        "the call fails closed: {first}"
    );
    let started = Instant::now();
    let second = fetch_jobs(&mut caller, &api_key, "{}");
    assert!(second.contains("internal_error"), "{second}");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "a stuck ledger refuses at once, running nothing"
    );
    // A statement timeout while the call waits for the ledger ends the statement,
    // and leaves no transaction behind (an autocommit session stays usable).
    caller
        .batch_execute("SET mcp_auth.ledger_timeout = 60000; SET statement_timeout = 300")
        .unwrap();
    let cancelled = caller.query_one(
        "SELECT call_tool($1, 'create_job', '{\"customer\": \"Cancelled\"}')::text",
        &[&api_key],
    );
    assert!(
        cancelled.is_err(),
        "the timeout ends the call: {cancelled:?}"
    );
    caller
        .batch_execute("SET statement_timeout = 0; SET mcp_auth.ledger_timeout = 300")
        .expect("the session is not left in an aborted transaction");
    let state: String = db
        .query_one(
            "SELECT state FROM pg_stat_activity WHERE pid = $1",
            &[&caller
                .query_one("SELECT pg_backend_pid()", &[])
                .unwrap()
                .get::<_, i32>(0)],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        state, "idle",
        "no transaction left open by the cancelled call"
    );
    hold.rollback().unwrap();
    let jobs: i64 = db
        .query_one(
            "SELECT count(*) FROM jobs WHERE tenant_id = $1::text::uuid",
            &[&t],
        )
        .unwrap()
        .get(0);
    assert_eq!(jobs, 0, "the refused call's job was rolled back with it");
    // Once the writer can write again, calls are answered and audited.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok: String = caller
            .query_one(
                "SELECT call_tool($1, 'fetch_jobs', '{}')->>'ok'",
                &[&api_key],
            )
            .unwrap()
            .get(0);
        if ok == "true" {
            break;
        }
        assert!(Instant::now() < deadline, "the ledger came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (succeeded, _) = audit_counts(&mut db, &key_id);
    assert!(succeeded >= 1);
}

#[test]
fn killing_the_writer_loses_no_acknowledged_call() {
    let mut db = connect();
    let t = tenant();
    let (key_id, api_key) = key(&mut db, &t, "Killed", 100_000);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let mut k = connect();
            let mut kills = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                kills += k
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                          WHERE backend_type = 'mcp_auth ledger'",
                        &[],
                    )
                    .unwrap()
                    .len();
                std::thread::sleep(Duration::from_millis(30));
            }
            kills
        });
        let callers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut c = connect();
                    (0..60)
                        .filter(|_| {
                            let ok: String = c
                                .query_one(
                                    "SELECT call_tool($1, 'fetch_jobs', '{}')->>'ok'",
                                    &[&api_key],
                                )
                                .unwrap()
                                .get(0);
                            ok == "true"
                        })
                        .count() as i64
                })
            })
            .collect();
        let ok: i64 = callers.into_iter().map(|c| c.join().unwrap()).sum();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (ok, killer.join().unwrap())
    });
    let (ok, kills) = results;
    assert!(kills > 0, "writers were killed");
    let (succeeded, _) = audit_counts(&mut db, &key_id);
    assert!(
        succeeded >= ok,
        "every acknowledged call is audited ({ok} results, {succeeded} rows, {kills} kills)"
    );
}

/// A tenant's admin holding its own key's row (an open DELETE) once made the
/// writer wait on that row's lock, and with it every tenant's calls: found by an
/// attack on the ledger. The writer no longer needs any row another role can lock.
#[test]
fn an_admin_holding_its_key_row_holds_up_no_call() {
    let mut db = connect();
    let (a, b) = (tenant(), tenant());
    let (a_id, a_key) = key(&mut db, &a, "Held", 100);
    let (_, b_key) = key(&mut db, &b, "Victim", 100);
    db.batch_execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'it_ledger_admin') THEN
             CREATE ROLE it_ledger_admin LOGIN IN ROLE mcp_admin; END IF; END $$",
    )
    .unwrap();
    db.execute(
        "SELECT grant_mcp_tenant_admin('it_ledger_admin', $1::text::uuid)",
        &[&a],
    )
    .unwrap();
    let mut admin = connect_as("it_ledger_admin");
    admin
        .batch_execute(&format!("SET mcp_auth.tenant_id = '{a}'"))
        .unwrap();
    let mut hold = admin.transaction().unwrap();
    let deleted: bool = hold
        .query_one("SELECT delete_mcp_key($1::text::uuid)", &[&a_id])
        .unwrap()
        .get(0);
    assert!(deleted);
    let mut c = client_role(&mut db, "it_ledger_victim");
    for (who, k) in [("the held key", &a_key), ("another tenant", &b_key)] {
        let answer: String = c
            .query_one("SELECT call_tool($1, 'fetch_jobs', '{}')::text", &[k])
            .unwrap()
            .get(0);
        assert!(
            answer.starts_with(r#"{"ok": true"#),
            "{who}'s call is answered while the admin holds the row: {answer}"
        );
    }
    hold.rollback().unwrap();
}
