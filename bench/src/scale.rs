//! The scale section: every path at production size, each figure a ratio of two
//! measurements of this run. `make bench SCALE=full` runs the sizes of the goals
//! (a 1,000,000-job tenant among 100, 100,000 keys in one statement, 1,000,000 keys,
//! a 5,000,000-row month of log); the default run uses a tenth of each, to stay
//! within about 15 minutes.

use crate::{fill, median, ms, pgbench, server_loop_ms, verdict, Result, Row, COLD_SAMPLES};
use postgres::Client;
use std::time::{Duration, Instant};

pub struct Sizes {
    pub big_jobs: i32,
    pub small_tenants: i32,
    pub keys_one_statement: i64,
    pub keys_total: i64,
    pub purge_rows: i64,
    pub stats_rows: i64,
}

impl Sizes {
    pub fn new(full: bool) -> Self {
        if full {
            Sizes {
                big_jobs: 1_000_000,
                small_tenants: 99,
                keys_one_statement: 100_000,
                keys_total: 1_000_000,
                purge_rows: 5_000_000,
                stats_rows: 10_000_000,
            }
        } else {
            Sizes {
                big_jobs: 100_000,
                small_tenants: 20,
                keys_one_statement: 10_000,
                keys_total: 300_000,
                purge_rows: 500_000,
                stats_rows: 1_000_000,
            }
        }
    }
}

const SMALL_JOBS: i32 = 1_000;
const BIG: &str = "5ca1e000-0000-4000-8000-000000000001";
const SMALL: &str = "5ca1e000-0000-4000-8000-000000000002";
const FETCH_SECONDS: u32 = 10;

/// One bcrypt hash at cost 4 (what each generated key costs), by the extension's crate.
fn bcrypt_hash_cost4() -> Duration {
    let key = mcp_auth_core::key::generate(mcp_auth_core::Environment::Live);
    median(
        (0..25)
            .map(|_| {
                let t = Instant::now();
                bcrypt::hash(&key, 4).expect("bcrypt hash");
                t.elapsed()
            })
            .collect(),
    )
}

fn n(x: i64) -> String {
    let s = x.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn run(db: &mut Client, sizes: &Sizes, bcrypt_once: Duration) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    keys(db, sizes, bcrypt_once, &mut rows)?;
    jobs(db, sizes, &mut rows)?;
    purge(db, sizes, &mut rows)?;
    Ok(rows)
}

/// Keys: many in one statement, and cold validation among a million.
fn keys(db: &mut Client, sizes: &Sizes, bcrypt_once: Duration, rows: &mut Vec<Row>) -> Result<()> {
    let count = sizes.keys_one_statement;
    eprintln!("scale: {count} keys in one statement...");
    let hash4 = bcrypt_hash_cost4();
    db.batch_execute("SET mcp_auth.bcrypt_cost = 4")?;
    let t = Instant::now();
    let made: i64 = db
        .query_one(
            "SELECT count(*) FROM generate_series(1, $1::bigint) g,
                    LATERAL generate_mcp_key('5ca1e000-0000-4000-8000-0000000000ee', 'bulk ' || g) k",
            &[&count],
        )?
        .get(0);
    let took = t.elapsed();
    db.batch_execute("RESET mcp_auth.bcrypt_cost")?;
    let per_key = took.as_secs_f64() / count as f64;
    rows.push(Row {
        what: format!("{} keys made in one statement (bcrypt cost 4)", n(count)),
        figure: format!("{:.1} s, {} made", took.as_secs_f64(), n(made)),
        ratio: format!(
            "{:.2} x one cost-4 bcrypt hash per key ({:.3} ms per key, hash {})",
            per_key / hash4.as_secs_f64(),
            per_key * 1e3,
            ms(hash4)
        ),
        goal: "all succeed".into(),
        verdict: verdict(made == count),
    });

    let have: i64 = db
        .query_one("SELECT count(*) FROM mcp_authentication_keys", &[])?
        .get(0);
    if have < sizes.keys_total {
        eprintln!("scale: filling to {} keys...", sizes.keys_total);
        fill(db, sizes.keys_total - have)?;
    }
    let targets: Vec<String> = (0..COLD_SAMPLES)
        .map(|i| {
            crate::generate(
                db,
                "5ca1e000-0000-4000-8000-0000000000ef",
                &format!("cold {i}"),
            )
        })
        .collect::<Result<_>>()?;
    let total: i64 = db
        .query_one("SELECT count(*) FROM mcp_authentication_keys", &[])?
        .get(0);
    let cold_t = crate::cold(db, &targets)?;
    let ratio = cold_t.as_secs_f64() / bcrypt_once.as_secs_f64();
    rows.push(Row {
        what: format!(
            "cold validation, 1 key among {} (median of {COLD_SAMPLES})",
            n(total)
        ),
        figure: ms(cold_t),
        ratio: format!("{ratio:.3} x one bcrypt verify ({})", ms(bcrypt_once)),
        goal: "≤ 1.2 x".into(),
        verdict: verdict(ratio <= 1.2),
    });
    Ok(())
}

/// Jobs: a fetch page, the dashboard and QRM for a large tenant against a small one.
fn jobs(db: &mut Client, sizes: &Sizes, rows: &mut Vec<Row>) -> Result<()> {
    eprintln!(
        "scale: seeding a {}-job tenant and {} of {SMALL_JOBS} jobs...",
        sizes.big_jobs, sizes.small_tenants
    );
    let t = Instant::now();
    db.execute(
        "SELECT mes_seed_demo($1::text::uuid, $2)",
        &[&BIG, &sizes.big_jobs],
    )?;
    db.execute(
        "SELECT count(mes_seed_demo(CASE WHEN g = 1 THEN $1::text::uuid ELSE
                    ('5ca1e000-0000-4000-8001-' || lpad(g::text, 12, '0'))::uuid END, $2))
           FROM generate_series(1, $3) g",
        &[&SMALL, &SMALL_JOBS, &sizes.small_tenants],
    )?;
    db.batch_execute(
        "VACUUM ANALYZE jobs, parts, operations, tasks, issues, cells, dashboard_counts",
    )?;
    eprintln!("scale: seeded in {:.0} s", t.elapsed().as_secs_f64());
    db.execute(
        "CREATE TABLE bench_scale_keys AS
         SELECT i, (generate_mcp_key(t::uuid, 'scale ' || i, p_rate_limit := 1000000)).api_key
           FROM (VALUES (0, $1::text), (1, $2::text)) v(i, t)",
        &[&BIG, &SMALL],
    )?;
    let fetch = |i: i32| {
        pgbench(
            &format!(
                "SELECT call_tool((SELECT api_key FROM bench_scale_keys WHERE i = {i}), 'fetch_jobs', '{{\"limit\": 50}}');"
            ),
            2,
            FETCH_SECONDS,
        )
    };
    fetch(0)?; // warm both tenants' pages into the cache
    fetch(1)?;
    // Alternated, so that drift of the machine falls on both sides.
    let (small_a, big_a, small_b, big_b) = (fetch(1)?, fetch(0)?, fetch(1)?, fetch(0)?);
    let (small_tps, big_tps) = ((small_a + small_b) / 2.0, (big_a + big_b) / 2.0);
    let share = 100.0 * big_tps / small_tps;
    rows.push(Row {
        what: format!(
            "call_tool fetch_jobs (limit 50), 2 clients, 2 x {FETCH_SECONDS} s each: tenant with {} jobs among {} tenants",
            n(sizes.big_jobs.into()),
            sizes.small_tenants + 1
        ),
        figure: format!("{big_tps:.0} TPS"),
        ratio: format!("{share:.0}% of the TPS for a tenant with {} jobs ({small_tps:.0} TPS)", n(SMALL_JOBS.into())),
        goal: "≥ 80%".into(),
        verdict: verdict(share >= 80.0),
    });

    let key: String = db
        .query_one("SELECT api_key FROM bench_scale_keys WHERE i = 0", &[])?
        .get(0);
    let tool_ms = |db: &mut Client, tool: &str| -> Result<f64> {
        server_loop_ms(
            db,
            &format!("SELECT call_tool('{key}', '{tool}', '{{}}')"),
            50,
        )
    };
    let dash = tool_ms(db, "get_dashboard_stats")?;
    let qrm = tool_ms(db, "get_qrm_data")?;
    // What both read before: the tenant's rows, counted (2.1.0's queries).
    let counted = server_loop_ms(
        db,
        &format!(
            "SELECT (SELECT count(*) FROM jobs WHERE tenant_id = '{BIG}' GROUP BY status LIMIT 1),
                    (SELECT count(*) FROM parts WHERE tenant_id = '{BIG}' GROUP BY status LIMIT 1),
                    (SELECT count(*) FROM operations WHERE tenant_id = '{BIG}' GROUP BY status LIMIT 1),
                    (SELECT count(*) FROM tasks WHERE tenant_id = '{BIG}' GROUP BY status LIMIT 1),
                    (SELECT count(*) FROM jobs WHERE tenant_id = '{BIG}' AND status <> 'completed'
                                                 AND due_date < current_date),
                    (SELECT count(*) FROM operations WHERE tenant_id = '{BIG}' AND status = 'in_progress'
                      GROUP BY cell_id LIMIT 1)"
        ),
        2,
    )?;
    let exact: bool = db
        .query_one(
            &format!(
                "SELECT (call_tool('{key}', 'get_dashboard_stats', '{{}}')->'result'->'jobs')
                        = (SELECT jsonb_object_agg(s, (SELECT count(*) FROM jobs WHERE tenant_id = '{BIG}' AND status = s))
                             FROM unnest(ARRAY['not_started', 'in_progress', 'on_hold', 'completed']) s)"
            ),
            &[],
        )?
        .get(0);
    rows.push(Row {
        what: format!(
            "get_dashboard_stats / get_qrm_data through call_tool, tenant with {} jobs (mean of 50)",
            n(sizes.big_jobs.into())
        ),
        figure: format!("{dash:.2} ms / {qrm:.2} ms"),
        ratio: format!(
            "{:.0} x faster than counting the tenant's rows ({counted:.0} ms); counts equal the rows': {exact}",
            counted / dash.max(qrm)
        ),
        goal: "< 50 ms each, exact".into(),
        verdict: verdict(dash < 50.0 && qrm < 50.0 && exact),
    });
    Ok(())
}

/// Retention: a month of log in day partitions, purged.
fn purge(db: &mut Client, sizes: &Sizes, rows: &mut Vec<Row>) -> Result<()> {
    let count = sizes.purge_rows;
    eprintln!("scale: a month of {count} log rows...");
    // The month [today - 61 days, today - 31 days): its day partitions made as the
    // notifier makes them ahead of time, filled straight, vacuumed as autovacuum
    // leaves a month-old partition, and counted when over (mcp_log_partition_close,
    // which maintain_mcp_log_partitions runs for each day as it ends; timed below).
    // Made and filled in one transaction, so that no notifier counts them empty first.
    let mut tx = db.transaction()?;
    tx.batch_execute(
        "SELECT bool_and(mcp_log_day_partition('mcp_key_usage_logs', (now() AT TIME ZONE 'UTC')::date - 61 + g))
           FROM generate_series(0, 29) g",
    )?;
    tx.execute(
        "INSERT INTO mcp_key_usage_logs (tenant_id, key_id, tool_name, tool_arguments, success, response_time_ms, created_at)
         SELECT '5ca1e000-0000-4000-8000-000000000003', '5ca1e000-0000-4000-8000-000000000004',
                'fetch_jobs', '{\"limit\": 50}', g % 10 <> 0, (g % 500)::int,
                ((now() AT TIME ZONE 'UTC')::date - 61)::timestamp AT TIME ZONE 'UTC'
                    + (g::float8 / $1) * interval '30 days'
           FROM generate_series(0, $1::bigint - 1) g",
        &[&count],
    )?;
    tx.commit()?;
    db.batch_execute("VACUUM ANALYZE mcp_key_usage_logs")?;
    let month: i64 = db
        .query_one(
            "SELECT count(*) FROM mcp_key_usage_logs WHERE created_at < now() - interval '31 days'",
            &[],
        )?
        .get(0);
    // The month's files: its day partitions, and those a purge detached and the
    // notifier has not dropped yet.
    let size = |db: &mut Client| -> Result<i64> {
        Ok(db
            .query_one(
                "SELECT COALESCE(sum(pg_total_relation_size(to_regclass(partition))), 0)::bigint
                   FROM mcp_log_partitions('mcp_key_usage_logs') WHERE ends <= now() - interval '31 days'",
                &[],
            )?
            .get::<_, i64>(0)
            + db.query_one(
                "SELECT COALESCE(sum(pg_total_relation_size(oid)), 0)::bigint FROM pg_class
                  WHERE relname ~ '^mcp_key_usage_logs_p\\d{8}_purged$'",
                &[],
            )?
            .get::<_, i64>(0))
    };
    let before = size(db)?;
    // Row by row, what a tenant's own purge does (and 2.1.0 did for everyone): one
    // day of the month, deleted and rolled back (without count triggers, as
    // mcp_log_delete deletes).
    let day: i64 = db
        .query_one(
            "SELECT count(*) FROM mcp_key_usage_logs
              WHERE created_at >= ((now() AT TIME ZONE 'UTC')::date - 40)::timestamp AT TIME ZONE 'UTC'
                AND created_at < ((now() AT TIME ZONE 'UTC')::date - 39)::timestamp AT TIME ZONE 'UTC'",
            &[],
        )?
        .get(0);
    let mut tx = db.transaction()?;
    tx.batch_execute("SET LOCAL session_replication_role = replica")?;
    let t = Instant::now();
    tx.execute(
        "DELETE FROM mcp_key_usage_logs
          WHERE created_at >= ((now() AT TIME ZONE 'UTC')::date - 40)::timestamp AT TIME ZONE 'UTC'
            AND created_at < ((now() AT TIME ZONE 'UTC')::date - 39)::timestamp AT TIME ZONE 'UTC'",
        &[],
    )?;
    let day_delete = t.elapsed();
    tx.rollback()?;
    // What counting the days costs maintenance in all, a day at a time as each ends:
    // timed as the month's count, since a notifier may count the days before us.
    let t = Instant::now();
    db.query_one(
        "SELECT count(*) FROM mcp_key_usage_logs WHERE created_at < now() - interval '31 days'",
        &[],
    )?;
    let counting = t.elapsed();
    db.batch_execute(
        "SELECT bool_and(mcp_log_partition_close(
                    'mcp_key_usage_logs_p' || to_char((now() AT TIME ZONE 'UTC')::date - 61 + g, 'YYYYMMDD')))
           FROM generate_series(0, 29) g",
    )?;
    let t = Instant::now();
    let purged: i64 = db
        .query_one("SELECT purge_mcp_usage_logs('31 days')", &[])?
        .get(0);
    let took = t.elapsed();
    // The notifier worker drops the detached days after the purge's commit: timed to
    // when they leave the catalog (its commit then releases their files; bounded wait:
    // a minute).
    let space_back = loop {
        let left: i64 = db
            .query_one("SELECT count(*) FROM pg_class WHERE relname ~ '^mcp_key_usage_logs_p\\d{8}_purged$'", &[])?
            .get(0);
        if left == 0 || t.elapsed() > Duration::from_secs(60) {
            break t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let after = size(db)?;
    let by_rows = day_delete.as_secs_f64() * month as f64 / day.max(1) as f64;
    rows.push(Row {
        what: format!("purge_mcp_usage_logs of a month of {} rows (30 day partitions)", n(month)),
        figure: format!("{}, {} rows removed", ms(took), n(purged)),
        ratio: format!(
            "{:.0} x faster than deleting row by row ({:.1} s, from one day's {}); \
             {:.0} MiB of {:.0} MiB left: the detached days left the catalog {} after the call began \
             (the notifier's drop, whose commit then frees their files); \
             counting the month's rows, which maintenance does a day at a time as each ends: {}",
            by_rows / took.as_secs_f64(),
            by_rows,
            ms(day_delete),
            after as f64 / 1048576.0,
            before as f64 / 1048576.0,
            ms(space_back),
            ms(counting)
        ),
        goal: "< 1 s, exact, no bloat".into(),
        verdict: verdict(
            took < Duration::from_secs(1) && purged == month && after == 0,
        ),
    });
    Ok(())
}
