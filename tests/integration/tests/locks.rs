//! No role can make another tenant wait (issue 18, item 3). A login with no grants at
//! all holds a lock it can take on the logs: `PREPARE` locks a table when it parses
//! the statement, before its rights are checked. Before 2.4.0 a superuser's purge
//! then queued for the log behind it, every tenant's inserts queued behind the purge,
//! and a call of another tenant took 9.85 s; maintenance did the same with the default
//! partition. Now both give way: another tenant's calls stay within twice their p99
//! alone, the purge says which days it skipped, and both finish once the holder lets
//! go. One test in a binary of its own, so that no other test adds to the timings.

use mcp_auth_integration::{connect, connect_as, fetch_jobs, key, tenant, url};
use postgres::{Client, NoTls};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn call(db: &mut Client, key: &str) -> Duration {
    let t0 = Instant::now();
    let answer = fetch_jobs(db, key, r#"{"limit": 1}"#);
    assert!(
        answer.contains(r#""ok": true"#),
        "the call was answered: {answer}"
    );
    t0.elapsed()
}

fn p99(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[(times.len() * 99).div_ceil(100) - 1]
}

/// A superuser connection whose WARNINGs are collected.
fn connect_with_warnings() -> (Client, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let mut config: postgres::Config = url().parse().unwrap();
    config.notice_callback(move |n| {
        let _ = tx.send(n.message().to_string());
    });
    (config.connect(NoTls).unwrap(), rx)
}

/// Runs `work` on its own connection while another tenant's calls are timed (at
/// least `min_calls`, until `work` is done); returns the timings and what it returned.
fn timed_during<T: Send>(
    db: &mut Client,
    key: &str,
    min_calls: usize,
    work: impl FnOnce() -> T + Send,
) -> (Vec<Duration>, T) {
    std::thread::scope(|s| {
        let worker = s.spawn(work);
        let mut times = Vec::new();
        while times.len() < min_calls || !worker.is_finished() {
            times.push(call(db, key));
        }
        (times, worker.join().unwrap())
    })
}

fn count(db: &mut Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn a_lock_held_by_a_login_without_grants_holds_up_no_tenant() {
    let mut db = connect();
    db.batch_execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'it_no_grants') THEN
             CREATE ROLE it_no_grants LOGIN; END IF; END $$",
    )
    .unwrap();
    let (owner, b) = (tenant(), tenant());
    let (_, b_key) = key(&mut db, &b, "Timed", 1_000_000);
    // Days to purge: 3 and 4 days old, in partitions of their own; and a row 6 days
    // old left in the default partition for maintenance to move.
    db.execute(
        "INSERT INTO mcp_key_usage_logs (tenant_id, tool_name, success, created_at)
         SELECT $1::text::uuid, 'old', true, now() - g * interval '1 day' FROM generate_series(3, 4) g",
        &[&owner],
    )
    .unwrap();
    db.batch_execute("SELECT maintain_mcp_log_partitions()")
        .unwrap();
    let old_rows = format!(
        "SELECT count(*) FROM mcp_key_usage_logs WHERE tenant_id = '{owner}' AND tool_name = 'old'"
    );
    let older_in_default = format!(
        "SELECT count(*) FROM mcp_key_usage_logs_default WHERE tenant_id = '{owner}' AND tool_name = 'older'"
    );
    assert_eq!(count(&mut db, &old_rows), 2);

    for _ in 0..50 {
        call(&mut db, &b_key);
    }
    let alone = p99((0..1000).map(|_| call(&mut db, &b_key)).collect());

    // The login with no grants: parse-time locks on the log and its default partition.
    let mut nobody = connect_as("it_no_grants");
    nobody
        .batch_execute(
            "BEGIN;
             PREPARE p AS SELECT 1 FROM mcp_key_usage_logs;
             PREPARE q AS SELECT 1 FROM mcp_key_usage_logs_default;",
        )
        .unwrap();
    let held = count(
        &mut db,
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE a.usename = 'it_no_grants' AND l.granted
            AND l.relation IN ('mcp_key_usage_logs'::regclass, 'mcp_key_usage_logs_default'::regclass)",
    );
    assert_eq!(held, 2, "the login without grants holds both locks");

    // A superuser's purge of every tenant, meanwhile.
    let (during_purge, (purged, warnings, took)) = timed_during(&mut db, &b_key, 1000, || {
        let (mut su, warnings) = connect_with_warnings();
        let t0 = Instant::now();
        let n: i64 = su
            .query_one("SELECT purge_mcp_usage_logs('2 days')", &[])
            .unwrap()
            .get(0);
        (n, warnings.try_iter().collect::<Vec<_>>(), t0.elapsed())
    });
    let limit = 2 * alone.max(Duration::from_millis(1));
    assert!(
        p99(during_purge.clone()) <= limit,
        "another tenant's p99 during the purge: {:?}, alone {alone:?}",
        p99(during_purge)
    );
    assert!(
        took < Duration::from_secs(5),
        "the purge gave way: {took:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("skipped whole days")),
        "the purge says what it skipped: {warnings:?}"
    );
    assert_eq!(
        count(&mut db, &old_rows),
        2,
        "the held days were skipped ({purged} rows went)"
    );

    // Maintenance, with the default partition held the same way: a row 6 days old
    // waits there for a partition of its own.
    db.execute(
        "INSERT INTO mcp_key_usage_logs (tenant_id, tool_name, success, created_at)
         VALUES ($1::text::uuid, 'older', true, now() - interval '6 days')",
        &[&owner],
    )
    .unwrap();
    assert_eq!(count(&mut db, &older_in_default), 1);
    let (during_maintenance, warnings) = timed_during(&mut db, &b_key, 1000, || {
        let (mut su, warnings) = connect_with_warnings();
        su.batch_execute("SELECT maintain_mcp_log_partitions()")
            .unwrap();
        warnings.try_iter().collect::<Vec<_>>()
    });
    assert!(
        p99(during_maintenance.clone()) <= limit,
        "another tenant's p99 during maintenance: {:?}, alone {alone:?}",
        p99(during_maintenance)
    );
    assert!(
        warnings.iter().any(|w| w.contains("not made now")),
        "maintenance says what it left: {warnings:?}"
    );
    assert_eq!(count(&mut db, &older_in_default), 1);

    // Once the holder lets go, both finish.
    nobody.batch_execute("ROLLBACK").unwrap();
    let (mut su, warnings) = connect_with_warnings();
    su.batch_execute("SELECT maintain_mcp_log_partitions()")
        .unwrap();
    assert_eq!(
        count(&mut db, &older_in_default),
        0,
        "maintenance moved the day once it could: {:?}",
        warnings.try_iter().collect::<Vec<_>>()
    );
    let purged: i64 = db
        .query_one("SELECT purge_mcp_usage_logs('2 days')", &[])
        .unwrap()
        .get(0);
    assert!(purged >= 3, "the purge finished: {purged} rows");
    assert_eq!(
        count(
            &mut db,
            &format!("SELECT count(*) FROM mcp_key_usage_logs WHERE tenant_id = '{owner}'")
        ),
        0
    );
}
