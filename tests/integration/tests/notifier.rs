//! The notifier worker as a LISTENer sees it: every logged call announced exactly
//! once, from many connections at once, whether or not a worker was running; the
//! worker leaves an idle database (so DROP DATABASE works, even right after a call)
//! and comes back on demand.
//! Runs in a database of its own, so no other test keeps its worker busy.

use mcp_auth_integration::{connect, fresh_database, in_parallel, key, tenant, url};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient, NoTls};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const DB: &str = "mcp_notifier_it";

fn connect_db() -> Client {
    Client::connect(&format!("{} dbname={DB}", url()), NoTls).expect("connect")
}

fn log_call(db: &mut impl GenericClient, tenant: &str, key_id: &str) -> String {
    db.query_one(
        "SELECT log_mcp_key_usage($1::text::uuid, $2::text::uuid, 'fetch_jobs')::text",
        &[&tenant, &key_id],
    )
    .unwrap()
    .get(0)
}

fn notifier_pids(db: &mut Client) -> i64 {
    db.query_one(
        "SELECT count(*) FROM pg_stat_activity
          WHERE backend_type = 'mcp_auth notifier' AND datname = current_database()",
        &[],
    )
    .unwrap()
    .get(0)
}

/// Waits up to `limit` for the database to have `n` notifiers; false if it does not.
fn wait_for_workers(db: &mut Client, n: i64, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if notifier_pids(db) == n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Collects the ids of this tenant's payloads until `want` arrived, then listens
/// 500 ms more for anything extra.
fn collect(listener: &mut Client, tenant: &str, want: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut notes = listener.notifications();
    {
        let mut it = notes.timeout_iter(Duration::from_secs(10));
        while let Some(n) = it.next().unwrap() {
            let v: serde_json::Value = serde_json::from_str(n.payload()).unwrap();
            if v["tenant_id"] == tenant {
                ids.push(v["id"].as_str().unwrap().to_string());
            }
            if ids.len() == want {
                break;
            }
        }
    }
    let mut extra = notes.timeout_iter(Duration::from_millis(500));
    while let Some(n) = extra.next().unwrap() {
        if n.payload().contains(tenant) {
            ids.push(format!("extra: {}", n.payload()));
        }
    }
    ids
}

#[test]
fn every_logged_call_is_announced_exactly_once() {
    fresh_database(DB);
    let mut admin = connect();
    let mut db = connect_db();
    db.batch_execute("CREATE EXTENSION mcp_auth").unwrap();
    let t = tenant();
    let (key_id, _) = key(&mut db, &t, "announced", 1000);
    let mut listener = connect_db();
    listener.batch_execute("LISTEN mcp_activity").unwrap();

    // 1. No worker yet: the first commit starts one. 8 connections log 25 calls each.
    assert_eq!(notifier_pids(&mut db), 0);
    let logged = in_parallel(8, |_| {
        let mut c = connect_db();
        (0..25).map(|_| log_call(&mut c, &t, &key_id)).collect()
    });
    let got = collect(&mut listener, &t, logged.len());
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 200, "one payload per call, no more: {got:?}");
    assert_eq!(unique.len(), 200, "no payload twice");
    assert_eq!(
        unique,
        logged.iter().collect(),
        "the payloads name the logged calls"
    );
    let queued: i64 = db
        .query_one("SELECT count(*) FROM mcp_activity_outbox", &[])
        .unwrap()
        .get(0);
    assert_eq!(queued, 0, "the outbox is empty once everything is sent");

    // 2. An idle database keeps no worker: it leaves after about a second.
    assert!(
        wait_for_workers(&mut db, 0, Duration::from_secs(10)),
        "the notifier left an idle database"
    );

    // 3. The next call starts a new one, and is announced.
    let id = log_call(&mut db, &t, &key_id);
    assert_eq!(collect(&mut listener, &t, 1), vec![id]);

    // 4. A call logged in a transaction that rolls back is announced all the same,
    //    before its neighbour: the ledger made it durable before the log returned.
    let mut tx = db.transaction().unwrap();
    let undone = log_call(&mut tx, &t, &key_id);
    tx.rollback().unwrap();
    let id = log_call(&mut db, &t, &key_id);
    assert_eq!(collect(&mut listener, &t, 2), vec![undone, id]);

    // 5. A stopped worker (pg_terminate_backend) is replaced by the next commit.
    db.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE backend_type = 'mcp_auth notifier' AND datname = current_database()",
    )
    .unwrap();
    assert!(wait_for_workers(&mut db, 0, Duration::from_secs(10)));
    let id = log_call(&mut db, &t, &key_id);
    assert_eq!(collect(&mut listener, &t, 1), vec![id]);

    // 6. DROP DATABASE right after a call: it waits for the worker to leave the
    //    idle database (about a second), then succeeds.
    log_call(&mut db, &t, &key_id);
    assert!(
        wait_for_workers(&mut db, 1, Duration::from_secs(5)),
        "a worker is serving the database"
    );
    drop((db, listener));
    admin.batch_execute(&format!("DROP DATABASE {DB}")).unwrap();
}

/// No role can stop notifications: 2.1.0's worker took a session advisory lock that
/// any role could hold first (`pg_advisory_lock_shared(1835233390, 0)`), which kept
/// every worker out. And a payload, which every LISTENer of the database sees,
/// carries no argument value, not even inside an error message.
#[test]
fn another_role_cannot_silence_notifications_and_payloads_hold_no_arguments() {
    const DB: &str = "mcp_notifier_locks_it";
    fresh_database(DB);
    let mut admin = connect();
    admin
        .batch_execute(
            "DO $r$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'it_lock_holder') THEN
                     CREATE ROLE it_lock_holder LOGIN;
                 END IF;
             END $r$;",
        )
        .unwrap();
    let db_url = format!("{} dbname={DB}", url());
    let mut db = Client::connect(&db_url, NoTls).unwrap();
    db.batch_execute(
        "CREATE EXTENSION mcp_auth;
         CREATE FUNCTION login_check(p_args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
         SELECT register_mcp_tool('login_check', 'test', 'Checks a password',
                '{\"type\": \"object\", \"properties\": {\"password\": {\"type\": \"string\", \"maxLength\": 8}}}',
                'login_check(jsonb)'::regprocedure);",
    )
    .unwrap();
    let t = tenant();
    let (_, api_key) = key(&mut db, &t, "silenced?", 1000);

    // The intruder holds the old notifier lock, shared and exclusive, for the whole test.
    let mut intruder = Client::connect(&format!("{db_url} user=it_lock_holder"), NoTls).unwrap();
    intruder
        .batch_execute(
            "SELECT pg_advisory_lock_shared(1835233390, 0); SELECT pg_advisory_lock(1835233390, 0);",
        )
        .unwrap();
    let mut listener = Client::connect(&db_url, NoTls).unwrap();
    listener.batch_execute("LISTEN mcp_activity").unwrap();

    let secret = "Tr0ub4dor&3-correct-horse";
    let envelope: String = db
        .query_one(
            "SELECT call_tool($1, 'login_check', jsonb_build_object('password', $2::text))::text",
            &[&api_key, &secret],
        )
        .unwrap()
        .get(0);
    assert!(envelope.contains("validation_error"), "{envelope}");

    let payload = {
        let mut notes = listener.notifications();
        let mut it = notes.timeout_iter(Duration::from_secs(10));
        loop {
            match it.next().unwrap() {
                Some(n) if n.payload().contains(&t) => break Some(n.payload().to_string()),
                Some(_) => continue,
                None => break None,
            }
        }
    };
    let Some(payload) = payload else {
        // Say what was seen: a toast still queued with no worker is a slot shortage
        // (see max_worker_processes), not a lock another role holds.
        let state: String = db
            .query_one(
                "SELECT (SELECT count(*) FROM mcp_activity_outbox) || ' queued, '
                     || (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'mcp_auth notifier'
                           AND datname = current_database()) || ' notifier(s)'",
                &[],
            )
            .unwrap()
            .get(0);
        panic!(
            "the call was not announced within 10 s while another role held the old lock: {state}"
        );
    };
    let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(v["tool"], "login_check");
    assert_eq!(v["success"], false);
    assert!(v.get("arguments").is_none(), "{payload}");
    assert!(!payload.contains("Tr0ub4dor"), "{payload}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("password: must be at most 8 characters long"),
        "{payload}"
    );
    drop((listener, intruder, db));
    admin
        .batch_execute(&format!("DROP DATABASE {DB} WITH (FORCE)"))
        .unwrap();
}
