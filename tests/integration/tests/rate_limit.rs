//! The rate limiter over many real connections.

use mcp_auth_integration::{connect, in_parallel, key, tenant};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

fn allowed(db: &mut postgres::Client, key_id: &str) -> bool {
    db.query_one(
        "SELECT allowed FROM check_mcp_rate_limit($1::text::uuid)",
        &[&key_id],
    )
    .unwrap()
    .get(0)
}

#[test]
fn eight_connections_400_calls_limit_100_exactly_100_allowed() {
    let mut db = connect();
    let (key_id, _) = key(&mut db, &tenant(), "burst", 100);
    let start = Barrier::new(8);
    let accepted: usize = in_parallel(8, |_| {
        let mut db = connect();
        start.wait();
        vec![(0..50).filter(|_| allowed(&mut db, &key_id)).count()]
    })
    .into_iter()
    .sum();
    assert_eq!(accepted, 100);
    // The refusals say when to retry: within the minute, never zero.
    let row = db
        .query_one(
            "SELECT allowed, remaining, retry_after_ms FROM check_mcp_rate_limit($1::text::uuid)",
            &[&key_id],
        )
        .unwrap();
    let (ok, remaining, retry): (bool, i32, i32) = (row.get(0), row.get(1), row.get(2));
    assert!(!ok);
    assert_eq!(remaining, 0);
    assert!((1..=60_000).contains(&retry), "retry_after_ms = {retry}");
}

#[test]
fn a_client_at_or_under_its_limit_is_never_refused() {
    // Two clients for two minutes: once a second against 100/min, and exactly at the
    // limit (one call every 6 s against 10/min).
    let mut db = connect();
    let t = tenant();
    let (under, _) = key(&mut db, &t, "once a second", 100);
    let (at_limit, _) = key(&mut db, &t, "at the limit", 10);
    let run = |key_id: String, every: Duration, calls: usize| {
        thread::spawn(move || {
            let mut db = connect();
            let mut refused = 0;
            for _ in 0..calls {
                if !allowed(&mut db, &key_id) {
                    refused += 1;
                }
                thread::sleep(every);
            }
            refused
        })
    };
    let a = run(under, Duration::from_secs(1), 120);
    let b = run(at_limit, Duration::from_secs(6), 20);
    assert_eq!(a.join().unwrap(), 0, "refused calls at 1/s against 100/min");
    assert_eq!(
        b.join().unwrap(),
        0,
        "refused calls at 10/min against 10/min"
    );
}

#[test]
fn a_changed_limit_applies_to_the_next_call() {
    let mut db = connect();
    let (key_id, _) = key(&mut db, &tenant(), "changed", 2);
    assert!(allowed(&mut db, &key_id));
    assert!(allowed(&mut db, &key_id));
    assert!(!allowed(&mut db, &key_id));
    db.execute(
        "UPDATE mcp_authentication_keys SET rate_limit = 3 WHERE id = $1::text::uuid",
        &[&key_id],
    )
    .unwrap();
    assert!(allowed(&mut db, &key_id));
    assert!(!allowed(&mut db, &key_id));
}

#[test]
fn keys_do_not_share_a_budget() {
    let mut db = connect();
    let t = tenant();
    let (a, _) = key(&mut db, &t, "a", 1);
    let (b, _) = key(&mut db, &t, "b", 1);
    assert!(allowed(&mut db, &a));
    assert!(!allowed(&mut db, &a));
    assert!(allowed(&mut db, &b));
}

/// 8 connections at once make 30 calls each of `tool` with `key`: how many ended
/// in each outcome ("ok" or the error type).
fn burst(key: &str, tool: &str) -> std::collections::HashMap<String, usize> {
    let start = Barrier::new(8);
    let mut outcomes = std::collections::HashMap::new();
    for o in in_parallel(8, |_| {
        let mut c = connect();
        start.wait();
        (0..30)
            .map(|_| {
                c.query_one(
                    "SELECT coalesce(call_tool($1, $2, '{}')->'error'->>'type', 'ok')",
                    &[&key, &tool],
                )
                .unwrap()
                .get::<_, String>(0)
            })
            .collect()
    }) {
        *outcomes.entry(o).or_insert(0) += 1;
    }
    outcomes
}

/// Through call_tool, which decides after the handler ran: 8 connections make 240
/// calls of a writing tool against a limit of 50. Exactly 50 succeed, and only their
/// writes remain; every call is audited. Then the same against a tool that always
/// fails: failed calls count against the limit too (exactly 50 reach the tool's
/// error, the rest are refused), so failing on purpose is no way around it.
#[test]
fn call_tool_admits_exactly_the_limit_and_refused_calls_leave_no_writes() {
    let mut db = connect();
    let t = tenant();
    let suffix = t.replace('-', "_");
    let (key_id, api_key) = key(&mut db, &t, "call_tool burst", 50);
    db.batch_execute(&format!(
        "CREATE TABLE it_writes_{suffix} (n int);
         GRANT INSERT ON it_writes_{suffix} TO mcp_tool_runner;
         CREATE FUNCTION it_write_{suffix}(p_args jsonb) RETURNS jsonb LANGUAGE sql AS
             $$ INSERT INTO public.it_writes_{suffix} VALUES (1); SELECT '{{}}'::jsonb $$;
         SELECT register_mcp_tool('it_write_{suffix}', 'test', 'Writes a row', '{{\"type\": \"object\"}}',
                                  'it_write_{suffix}(jsonb)'::regprocedure);
         CREATE FUNCTION it_fail_{suffix}(p_args jsonb) RETURNS jsonb LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO public.it_writes_{suffix} VALUES (2);
                      RAISE EXCEPTION 'never' USING ERRCODE = 'object_not_in_prerequisite_state'; END $$;
         SELECT register_mcp_tool('it_fail_{suffix}', 'test', 'Always fails', '{{\"type\": \"object\"}}',
                                  'it_fail_{suffix}(jsonb)'::regprocedure);"
    ))
    .unwrap();
    let outcomes = burst(&api_key, &format!("it_write_{suffix}"));
    let n = |o: &str| outcomes.get(o).copied().unwrap_or(0);
    assert_eq!((n("ok"), n("rate_limit_error")), (50, 190), "{outcomes:?}");
    let writes: i64 = db
        .query_one(&format!("SELECT count(*) FROM it_writes_{suffix}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(writes, 50, "a refused call's writes are rolled back");
    let audited: i64 = db
        .query_one(
            "SELECT count(*) FROM mcp_key_usage_logs WHERE key_id = $1::text::uuid",
            &[&key_id],
        )
        .unwrap()
        .get(0);
    assert_eq!(audited, 240, "every call is audited");

    let (_, failing_key) = key(&mut db, &t, "call_tool failures", 50);
    let outcomes = burst(&failing_key, &format!("it_fail_{suffix}"));
    let n = |o: &str| outcomes.get(o).copied().unwrap_or(0);
    assert_eq!(
        (n("invalid_state"), n("rate_limit_error")),
        (50, 190),
        "{outcomes:?}"
    );
    let stray: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM it_writes_{suffix} WHERE n = 2"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stray, 0, "a failed handler's writes are rolled back");
    db.batch_execute(&format!(
        "DELETE FROM mcp_tools WHERE name IN ('it_write_{suffix}', 'it_fail_{suffix}');
         DROP FUNCTION it_write_{suffix}(jsonb), it_fail_{suffix}(jsonb); DROP TABLE it_writes_{suffix};"
    ))
    .unwrap();
}
