//! The audit chain's cost and verification speed (issue 21): the ledger's
//! throughput with the chain against the same load without it (mcp_auth.audit_chain
//! off, in the same run, alternating), and `verify_mcp_audit` in rows per second.

use crate::{pgbench, verdict, Result, Row};
use postgres::Client;
use std::time::Instant;

const SETUP: &str = "
    SET mcp_auth.bcrypt_cost = 4;
    -- 16 keys over 4 tenants: client i logs for key i % 16 (tenant i % 4).
    CREATE TABLE bench_chain_keys (i int PRIMARY KEY, tenant_id uuid NOT NULL, key_id uuid NOT NULL);
    INSERT INTO bench_chain_keys
        SELECT g, t, k.key_id
          FROM generate_series(0, 15) g,
               LATERAL (SELECT ('c0000000-0000-4000-8000-00000000000' || (g % 4))::uuid AS t) tt,
               LATERAL generate_mcp_key(t, 'chain ' || g, p_rate_limit := 2000000000) k;
    CREATE FUNCTION bench_chain_log(p_client int) RETURNS uuid LANGUAGE sql AS $$
        SELECT log_mcp_key_usage(k.tenant_id, k.key_id, 'fetch_jobs', '{\"limit\": 50}', true, NULL, 3)
          FROM bench_chain_keys k WHERE k.i = p_client % 16
    $$;
    RESET mcp_auth.bcrypt_cost;
";

const SECONDS: u32 = 8;

fn set_chain(db: &mut Client, on: bool) -> Result<()> {
    // Two statements: ALTER SYSTEM may not run in the implicit transaction of a batch.
    db.batch_execute(&format!("ALTER SYSTEM SET mcp_auth.audit_chain = {on}"))?;
    db.batch_execute("SELECT pg_reload_conf()")?;
    // The writer reads the configuration at its next round; give the reload a moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    Ok(())
}

pub fn run(db: &mut Client, rows: &mut Vec<Row>) -> Result<()> {
    eprintln!("audit chain: the ledger with and without it (pgbench)...");
    db.batch_execute(SETUP)?;
    let script = "SELECT bench_chain_log(:client_id);";
    pgbench(script, 16, 2)?;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    // Off, on, on, off: the log grows through the runs, and a later run writes into
    // larger indexes, so each way gets an early and a late turn (a drift cancels out).
    for chained in [false, true, true, false] {
        set_chain(db, chained)?;
        let tps = pgbench(script, 16, SECONDS)?;
        let runs = if chained { &mut on } else { &mut off };
        runs.push(tps);
    }
    db.batch_execute("ALTER SYSTEM RESET mcp_auth.audit_chain")?;
    db.batch_execute("SELECT pg_reload_conf()")?;
    // Some 200,000 calls were just logged: vacuum their rows and checkpoint now, so that
    // the sections after this one do not measure autovacuum's and the checkpointer's
    // catching up with this one (the first half of each of their comparisons would
    // pay for it, the second not).
    db.batch_execute(
        "VACUUM (ANALYZE) mcp_key_usage_logs, activity_log, mcp_key_usage_totals,
                          mcp_key_usage_minutes, mcp_key_usage_counters, mcp_rate_limit_charges,
                          mcp_audit_heads",
    )?;
    db.batch_execute("CHECKPOINT")?;
    let (on, off) = (on.iter().sum::<f64>() / 2.0, off.iter().sum::<f64>() / 2.0);
    rows.push(Row {
        what: format!(
            "log_mcp_key_usage through the ledger, 16 connections over 4 tenants, 2 x {SECONDS} s each way (off, on, on, off): chained"
        ),
        figure: format!("{on:.0} calls/s"),
        ratio: format!(
            "{:.0}% of the same without the chain ({off:.0} calls/s)",
            100.0 * on / off
        ),
        goal: "≥ 90%".into(),
        verdict: verdict(on >= 0.9 * off),
    });

    eprintln!("audit chain: verification speed...");
    // The tenant with the longest chain (the pipeline section's).
    let tenant: String = db
        .query_one(
            "SELECT tenant_id::text FROM mcp_audit_heads WHERE log = 'usage' ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .get(0);
    let started = Instant::now();
    let row = db.query_one(
        // Both of its chains, usage and activity.
        "SELECT bool_and(verified), sum(rows_checked)::bigint FROM verify_mcp_audit($1::text::uuid)",
        &[&tenant],
    )?;
    let took = started.elapsed();
    let (verified, checked): (bool, i64) = (row.get(0), row.get(1));
    let rate = checked as f64 / took.as_secs_f64();
    rows.push(Row {
        what: format!(
            "verify_mcp_audit of one tenant's whole chains, usage and activity ({checked} rows)"
        ),
        figure: format!("{:.0} rows/s", rate),
        ratio: format!("{:.3} s; verified: {verified}", took.as_secs_f64()),
        goal: "≥ 200,000 rows/s".into(),
        verdict: verdict(verified && rate >= 200_000.0),
    });
    Ok(())
}
