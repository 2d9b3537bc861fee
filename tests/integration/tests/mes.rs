//! mcp_mes under concurrency: tools called through call_tool from many connections.

use mcp_auth_integration::{connect, in_parallel, key, tenant, with_mes};
use std::collections::HashSet;

#[test]
fn concurrent_create_job_calls_get_distinct_numbers() {
    let mut db = with_mes();
    let t = tenant();
    // One key per connection: calls of one key already take turns in the rate limiter.
    let keys: Vec<String> = (0..8)
        .map(|i| key(&mut db, &t, &format!("creator {i}"), 10_000).1)
        .collect();
    let numbers = in_parallel(keys.len(), |i| {
        let mut c = connect();
        (0..5)
            .map(|_| {
                let envelope: serde_json::Value = serde_json::from_str(
                    &c.query_one(
                        "SELECT call_tool($1, 'create_job', '{\"customer\": \"Acme\"}')::text",
                        &[&keys[i]],
                    )
                    .unwrap()
                    .get::<_, String>(0),
                )
                .unwrap();
                assert_eq!(envelope["ok"], true, "{envelope}");
                envelope["result"]["job"]["job_number"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    });
    let distinct: HashSet<&String> = numbers.iter().collect();
    assert_eq!(distinct.len(), 40, "{numbers:?}");
    let expected: HashSet<String> = (1001..1041).map(|n| format!("J-{n}")).collect();
    assert_eq!(distinct, expected.iter().collect());
}
