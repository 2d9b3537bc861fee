//! The audit chains under concurrency: 16 connections over 4 tenants log calls for
//! 30 seconds; every tenant's chains (usage and activity) then verify, with one
//! link per call and no gap in their sequences.

use mcp_auth_integration::{connect, in_parallel, key, tenant};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 16;
const TENANTS: usize = 4;
const FOR: Duration = Duration::from_secs(30);

#[test]
fn sixteen_connections_over_four_tenants_leave_whole_chains() {
    let mut db = connect();
    let tenants: Vec<(String, String)> = (0..TENANTS)
        .map(|i| {
            let t = tenant();
            let (key_id, _) = key(&mut db, &t, &format!("chain {i}"), 1_000_000);
            (t, key_id)
        })
        .collect();
    let logged = in_parallel(CONNECTIONS, |c| {
        let (t, key_id) = &tenants[c % TENANTS];
        let mut db = connect();
        let until = Instant::now() + FOR;
        let mut n = 0u64;
        while Instant::now() < until {
            db.query_one(
                "SELECT log_mcp_key_usage($1::text::uuid, $2::text::uuid, 'fetch_jobs',
                        jsonb_build_object('connection', $3::int, 'n', $4::bigint), $4::bigint % 5 <> 0,
                        CASE WHEN $4::bigint % 5 = 0 THEN 'refused' END, ($4::bigint % 50)::int)",
                &[t, key_id, &(c as i32), &(n as i64)],
            )
            .unwrap();
            n += 1;
        }
        vec![(c % TENANTS, n)]
    });
    for (i, (t, _)) in tenants.iter().enumerate() {
        let calls: u64 = logged.iter().filter(|(x, _)| *x == i).map(|(_, n)| n).sum();
        // Both chains: the usage rows and the activity rows the ledger wrote for them.
        let rows = db
            .query(
                "SELECT log, verified, rows_checked, first_seq, last_seq, COALESCE(problem, '')
                   FROM verify_mcp_audit($1::text::uuid) ORDER BY log DESC",
                &[t],
            )
            .unwrap();
        let logs: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(logs, ["usage", "activity"], "tenant {i}");
        for row in rows {
            let (log, verified, checked, first, last, problem): (
                String,
                bool,
                i64,
                Option<i64>,
                Option<i64>,
                String,
            ) = (
                row.get(0),
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
            );
            assert!(verified, "tenant {i}, {log}: {problem}");
            assert_eq!(
                checked as u64, calls,
                "tenant {i}, {log}: one link per call"
            );
            assert_eq!(
                (first, last),
                (Some(1), Some(calls as i64)),
                "tenant {i}, {log}: no gap"
            );
        }
        assert!(calls > 100, "tenant {i}: only {calls} calls in {FOR:?}");
    }
}
