//! The audit trail as a client sees it: notifications, and statistics that match
//! counts kept independently by the test.

use mcp_auth_integration::{connect, in_parallel, key, tenant};
use postgres::fallible_iterator::FallibleIterator;
use rand::Rng;
use std::collections::HashMap;
use std::time::Duration;

/// One logged call, as an MCP server would report it.
struct Call<'a> {
    tool: &'a str,
    args: serde_json::Value,
    success: bool,
    error: Option<&'a str>,
    ms: Option<i32>,
}

fn log(db: &mut postgres::Client, tenant: &str, key_id: &str, c: Call<'_>) {
    db.query_one(
        "SELECT log_mcp_key_usage($1::text::uuid, $2::text::uuid, $3, $4::text::jsonb, $5, $6, $7)",
        &[
            &tenant,
            &key_id,
            &c.tool,
            &c.args.to_string(),
            &c.success,
            &c.error,
            &c.ms,
        ],
    )
    .unwrap();
}

#[test]
fn listen_receives_one_clean_payload_per_logged_call() {
    let mut listener = connect();
    listener.batch_execute("LISTEN mcp_activity").unwrap();
    let mut db = connect();
    let t = tenant();
    let (key_id, api_key) = key(&mut db, &t, "listened", 1000);
    let secret = "hunter2-do-not-store";
    let calls = 12;
    for i in 0..calls {
        let args = serde_json::json!({
            "status": "in_progress",
            "password": secret,
            "nested": {"apiKey": api_key, "Authorization": format!("Bearer {secret}")},
        });
        let error = format!("rejected key {api_key}");
        let failed = i % 3 == 0;
        let call = Call {
            tool: "fetch_jobs",
            args,
            success: !failed,
            error: failed.then_some(error.as_str()),
            ms: Some(10 + i),
        };
        log(&mut db, &t, &key_id, call);
    }
    let mut payloads = Vec::new();
    let mut notes = listener.notifications();
    let mut it = notes.timeout_iter(Duration::from_secs(5));
    while let Some(n) = it.next().unwrap() {
        if n.payload().contains(&t) {
            payloads.push(n.payload().to_string());
        }
        if payloads.len() == calls as usize {
            break;
        }
    }
    assert_eq!(payloads.len(), calls as usize);
    for p in &payloads {
        assert!(!p.contains(&api_key), "key in payload: {p}");
        assert!(!p.contains(secret), "secret in payload: {p}");
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        assert_eq!(v["tool"], "fetch_jobs");
        assert_eq!(v["key_prefix"], &api_key[..16]);
        assert!(v["response_time_ms"].is_number());
        let ok = v["success"].as_bool().unwrap();
        assert_eq!(v["action"], if ok { "mcp_execute" } else { "mcp_error" });
        if !ok {
            assert_eq!(
                v["error"],
                format!("rejected key {}[redacted]", &api_key[..16])
            );
        }
    }
    // Nor is either in any stored row of this tenant.
    for table in ["mcp_key_usage_logs", "activity_log"] {
        let n: i64 = db
            .query_one(
                &format!(
                    "SELECT count(*) FROM {table} x WHERE tenant_id = $1::text::uuid
                       AND (x::text LIKE '%' || $2 || '%' OR x::text LIKE '%' || $3 || '%')"
                ),
                &[&t, &api_key, &secret],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} holds a secret");
    }
}

#[test]
fn stats_equal_counts_kept_by_the_client() {
    let mut db = connect();
    let t = tenant();
    let (key_id, _) = key(&mut db, &t, "measured", 100_000);
    let tools = [
        "fetch_jobs",
        "fetch_parts",
        "create_job",
        "update_job",
        "get_qrm_data",
        "fetch_tasks",
        "start_job",
    ];
    // Four connections log a random mix; each keeps its own tally.
    let tallies = in_parallel(4, |_| {
        let mut db = connect();
        let mut rng = rand::rng();
        let mut per_tool: HashMap<&str, i64> = HashMap::new();
        let (mut ok, mut failed, mut ms_sum, mut ms_n) = (0i64, 0i64, 0i64, 0i64);
        for _ in 0..60 {
            let tool = tools[rng.random_range(0..tools.len())];
            let success = rng.random_bool(0.8);
            let ms = rng.random_bool(0.9).then(|| rng.random_range(0..500));
            let call = Call {
                tool,
                args: serde_json::json!({}),
                success,
                error: (!success).then_some("boom"),
                ms,
            };
            log(&mut db, &t, &key_id, call);
            *per_tool.entry(tool).or_default() += 1;
            if success {
                ok += 1
            } else {
                failed += 1
            }
            if let Some(ms) = ms {
                ms_sum += i64::from(ms);
                ms_n += 1;
            }
        }
        vec![(per_tool, ok, failed, ms_sum, ms_n)]
    });
    let mut per_tool: HashMap<&str, i64> = HashMap::new();
    let (mut ok, mut failed, mut ms_sum, mut ms_n) = (0, 0, 0, 0);
    for (p, o, f, s, n) in tallies {
        for (k, v) in p {
            *per_tool.entry(k).or_default() += v;
        }
        ok += o;
        failed += f;
        ms_sum += s;
        ms_n += n;
    }
    let row = db
        .query_one(
            "SELECT total_requests, successful_requests, failed_requests,
                    avg_response_time_ms::text, last_24h_requests, most_used_tools::text,
                    last_used_at IS NOT NULL
               FROM get_mcp_key_stats($1::text::uuid)",
            &[&key_id],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), ok + failed);
    assert_eq!(row.get::<_, i64>(1), ok);
    assert_eq!(row.get::<_, i64>(2), failed);
    let avg: f64 = row.get::<_, String>(3).parse().unwrap();
    assert!(
        (avg - ms_sum as f64 / ms_n as f64).abs() < 0.006,
        "avg {avg}"
    );
    assert_eq!(row.get::<_, i64>(4), ok + failed);
    let mut expected: Vec<(&str, i64)> = per_tool.into_iter().collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    expected.truncate(5);
    let top: Vec<(String, i64)> =
        serde_json::from_str::<Vec<serde_json::Value>>(&row.get::<_, String>(5))
            .unwrap()
            .into_iter()
            .map(|v| {
                (
                    v["tool"].as_str().unwrap().to_string(),
                    v["requests"].as_i64().unwrap(),
                )
            })
            .collect();
    let expected: Vec<(String, i64)> = expected
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(top, expected);
    assert!(row.get::<_, bool>(6));
    // The same numbers straight from the log, for good measure.
    let direct: i64 = db
        .query_one(
            "SELECT count(*) FROM mcp_key_usage_logs WHERE key_id = $1::text::uuid",
            &[&key_id],
        )
        .unwrap()
        .get(0);
    assert_eq!(direct, ok + failed);
}
