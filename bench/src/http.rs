//! The HTTP section: `tools/call` through `mcp-auth serve --http` at 1, 16 and 64
//! concurrent clients, against the same `call_tool` sent straight to PostgreSQL on a
//! prepared connection per client; the server's own CPU against its backends' CPU
//! for the same calls; the server's memory; the others' p99 while one tenant
//! floods over its limit (at a bounded rate), against their p99 alone; and calls
//! with OAuth access tokens against the same calls with keys.

use crate::{ms, verdict, Result, Row};
use postgres::{Client, NoTls};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const SECONDS: u64 = 8;
const WARMUP: usize = 20;
const POOL: usize = 16;
const TENANT: &str = "b0000000-0000-4000-8000-0000000000b2";
const FLOOD_TENANT: &str = "b0000000-0000-4000-8000-0000000000b5";

fn call_body(id: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"fetch_jobs","arguments":{{"limit":1}}}}}}"#
    )
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(db_url: &str) -> Result<Server> {
        Self::start_with(db_url, false)
    }

    /// With `oauth`, also an authorization server (`--oauth-issuer` its own URL).
    fn start_with(db_url: &str, oauth: bool) -> Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let bin =
            std::env::var("MCP_AUTH_BIN").unwrap_or_else(|_| "target/release/mcp-auth".into());
        let issuer = format!("http://127.0.0.1:{port}");
        let oauth_args: &[&str] = if oauth {
            &["--oauth-issuer", &issuer]
        } else {
            &[]
        };
        let child = Command::new(bin)
            .args(["serve", "--http", &format!("127.0.0.1:{port}")])
            .args(oauth_args)
            .args([
                "--pool-size",
                &POOL.to_string(),
                "--max-in-flight-per-key",
                "8",
            ])
            .env("DATABASE_URL", format!("{db_url} user=bench_mcp_server"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let agent = ureq::AgentBuilder::new().build();
        for _ in 0..100 {
            if agent.get(&format!("{}/healthz", server.url)).call().is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("mcp-auth serve --http did not come up".into())
    }

    /// Peak resident memory so far, KiB.
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Latencies of `clients` threads calling for SECONDS each (after WARMUP calls), one
/// key each. Each thread makes its own caller with `make` (a connection, say) and
/// drops it before it ends; a call fails on any answer but a tool's result.
fn drive<M, C>(clients: usize, keys: &[String], make: M) -> Result<Vec<Duration>>
where
    M: Fn() -> Result<C> + Sync + Send + Clone + 'static,
    C: FnMut(&str, usize) -> Result<()>,
{
    let start = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (key, make, start) = (keys[c].clone(), make.clone(), start.clone());
            std::thread::spawn(move || -> std::result::Result<Vec<Duration>, String> {
                let mut call = make().map_err(|e| e.to_string())?;
                for i in 0..WARMUP {
                    call(&key, i).map_err(|e| e.to_string())?;
                }
                start.wait();
                let deadline = Instant::now() + Duration::from_secs(SECONDS);
                let mut times = Vec::new();
                let mut i = WARMUP;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    call(&key, i).map_err(|e| e.to_string())?;
                    times.push(t.elapsed());
                    i += 1;
                }
                Ok(times)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| "a client thread panicked")??);
    }
    all.sort();
    Ok(all)
}

fn p(times: &[Duration], q: f64) -> Duration {
    times[((times.len() as f64 - 1.0) * q) as usize]
}

/// One client's way of making a call: (key, request number).
type Caller = Box<dyn FnMut(&str, usize) -> Result<()>>;

/// A caller over HTTP: one keep-alive agent per client.
fn over_http(base: &str) -> impl Fn() -> Result<Caller> + Sync + Send + Clone {
    let url = format!("{base}/mcp");
    move || {
        let (agent, url) = (ureq::AgentBuilder::new().build(), url.clone());
        Ok(Box::new(move |key: &str, i: usize| -> Result<()> {
            let text = agent
                .post(&url)
                .set("Authorization", &format!("Bearer {key}"))
                .set("Content-Type", "application/json")
                .set("Accept", "application/json, text/event-stream")
                .set("MCP-Protocol-Version", "2025-06-18")
                .send_string(&call_body(i + 1))
                .map_err(|e| e.to_string())?
                .into_string()?;
            if text.contains("\"structuredContent\"") {
                Ok(())
            } else {
                Err(format!("unexpected answer: {text}").into())
            }
        }) as Caller)
    }
}

/// A caller straight to PostgreSQL: one prepared connection per client.
fn direct(url: &str, clients: usize, keys: &[String]) -> Result<Vec<Duration>> {
    let url = url.to_string();
    drive(clients, keys, move || {
        let mut db = Client::connect(&format!("{url} user=bench_mcp_server"), NoTls)?;
        let call = db.prepare(
            "SELECT call_tool($1, 'fetch_jobs', '{\"limit\": 1}', '{\"name\": \"bench\"}')::text",
        )?;
        Ok(move |key: &str, _i: usize| -> Result<()> {
            let answer: String = db.query_one(&call, &[&key])?.get(0);
            if answer.contains("\"ok\": true") {
                Ok(())
            } else {
                Err(format!("unexpected answer: {answer}").into())
            }
        })
    })
}

/// CPU time a process has used so far (user + system), from /proc/<pid>/stat.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12] // utime, stime: fields 14 and 15, counted from 3
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// CPU used so far by the server's database backends, by pid.
fn backends_cpu(db: &mut Client) -> Result<std::collections::HashMap<u32, Duration>> {
    Ok(db
        .query(
            "SELECT pid FROM pg_stat_activity WHERE usename = 'bench_mcp_server'",
            &[],
        )?
        .iter()
        .map(|r| {
            let pid = r.get::<_, i32>(0) as u32;
            (pid, cpu_of(pid))
        })
        .collect())
}

pub fn run(db: &mut Client, url: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    db.batch_execute(&format!(
        "SET mcp_auth.bcrypt_cost = 4;
         CREATE TABLE bench_http_keys AS
             SELECT g AS i, k.api_key FROM generate_series(0, 63) g,
                    generate_mcp_key('{TENANT}', 'http ' || g, p_rate_limit := 1000000) k;
         CREATE TABLE bench_flood_key AS
             SELECT api_key FROM generate_mcp_key('{FLOOD_TENANT}', 'flood', p_rate_limit := 60);
         RESET mcp_auth.bcrypt_cost;"
    ))?;
    let keys: Vec<String> = db
        .query("SELECT api_key FROM bench_http_keys ORDER BY i", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let flood_key: String = db
        .query_one("SELECT api_key FROM bench_flood_key", &[])?
        .get(0);

    let server = Server::start(url)?;
    for clients in [1, 16, 64] {
        eprintln!("http: {clients} clients...");
        let (server_before, backends_before) = (cpu_of(server.child.id()), backends_cpu(db)?);
        let http = drive(clients, &keys, over_http(&server.url))?;
        let server_cpu = cpu_of(server.child.id()).saturating_sub(server_before);
        let backends_cpu: Duration = backends_cpu(db)?
            .into_iter()
            .map(|(pid, cpu)| {
                cpu.saturating_sub(*backends_before.get(&pid).unwrap_or(&Duration::ZERO))
            })
            .sum();
        let sql = direct(url, clients, &keys)?;
        let added = p(&http, 0.5).saturating_sub(p(&sql, 0.5));
        rows.push(Row {
            what: format!(
                "tools/call fetch_jobs (limit 1) over HTTP, {clients} concurrent clients, {SECONDS} s (pool of {POOL})"
            ),
            figure: format!(
                "p50 {} / p99 {} ({} calls)",
                ms(p(&http, 0.5)),
                ms(p(&http, 0.99)),
                http.len()
            ),
            ratio: format!(
                "the same call_tool on a prepared connection per client: p50 {} / p99 {}; HTTP adds {} at p50",
                ms(p(&sql, 0.5)),
                ms(p(&sql, 0.99)),
                ms(added)
            ),
            goal: if clients == 1 {
                "adds ≤ 0.5 ms at p50".into()
            } else {
                "(context)".into()
            },
            verdict: if clients == 1 {
                verdict(added <= Duration::from_micros(500))
            } else {
                ""
            },
        });
        if clients == 16 {
            let share = server_cpu.as_secs_f64() / backends_cpu.as_secs_f64().max(1e-9);
            let per_call = |d: Duration| d / (http.len() as u32).max(1);
            rows.push(Row {
                what: format!(
                    "CPU per tools/call in mcp-auth serve --http, the 16-client run above ({} calls)",
                    http.len()
                ),
                figure: format!(
                    "{} µs in the server, {} µs in its PostgreSQL backends",
                    per_call(server_cpu).as_micros(),
                    per_call(backends_cpu).as_micros()
                ),
                ratio: format!("{:.0}% of the backends' CPU", share * 100.0),
                goal: "≤ 25%".into(),
                verdict: verdict(share <= 0.25),
            });
        }
    }
    rows.push(Row {
        what: "mcp-auth serve --http, peak memory (VmHWM) after the runs above".into(),
        figure: format!("{:.1} MiB", server.peak_rss_kib() as f64 / 1024.0),
        ratio: String::new(),
        goal: "(context)".into(),
        verdict: "",
    });

    eprintln!("http: one tenant's flood...");
    // Each flooding client sends at most FLOOD_RATE requests a second, so that the
    // load generator, on the same 2 cores, does not take the CPU itself.
    const FLOOD_RATE: u64 = 50;
    let others = 8;
    let alone = drive(others, &keys, over_http(&server.url))?;
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flood_threads: Vec<_> = (0..32)
        .map(|_| {
            let (flooding, key, url) = (
                flooding.clone(),
                flood_key.clone(),
                format!("{}/mcp", server.url),
            );
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                let mut n = 0u64;
                while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1000 / FLOOD_RATE));
                    // Refusals (rate limit, 429) are the point: count every answer.
                    let _ = agent
                        .post(&url)
                        .set("Authorization", &format!("Bearer {key}"))
                        .set("Content-Type", "application/json")
                        .set("Accept", "application/json, text/event-stream")
                        .send_string(&call_body(1));
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let with_flood = drive(others, &keys, over_http(&server.url))?;
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let flood_requests: u64 = flood_threads
        .into_iter()
        .map(|h| h.join().unwrap_or(0))
        .sum();
    let ratio = p(&with_flood, 0.99).as_secs_f64() / p(&alone, 0.99).as_secs_f64();
    rows.push(Row {
        what: format!(
            "{others} clients of another tenant while one key (limit 60/min) floods with 32 clients at most {FLOOD_RATE}/s each ({flood_requests} requests, refused past its limit)"
        ),
        figure: format!("p99 {} (p50 {})", ms(p(&with_flood, 0.99)), ms(p(&with_flood, 0.5))),
        ratio: format!(
            "{ratio:.2} x their p99 alone ({}, p50 {})",
            ms(p(&alone, 0.99)),
            ms(p(&alone, 0.5))
        ),
        goal: "≤ 1.5 x".into(),
        verdict: verdict(ratio <= 1.5),
    });
    drop(server);
    rows.push(token_against_key(db, url, &keys[..TOKEN_CLIENTS])?);
    Ok(rows)
}

const TOKEN_CLIENTS: usize = 4;

/// The same calls with OAuth access tokens (one per key, all its tools) and with
/// the keys themselves, through one `--oauth-issuer` server: rounds key, token,
/// token, key, so that drift over the run falls on both alike.
fn token_against_key(db: &mut Client, url: &str, keys: &[String]) -> Result<Row> {
    let server = Server::start_with(url, true)?;
    let resource = format!("{}/mcp", server.url);
    // The RFC 7636 example pair: the bench needs a grant, not a secret verifier.
    let (verifier, challenge) = (
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
    let client: String = db
        .query_one(
            "SELECT mcp_oauth_register_client('bench', ARRAY['http://127.0.0.1:9/cb']) ->> 'client_id'",
            &[],
        )?
        .get(0);
    let mut tokens = Vec::new();
    for key in keys {
        let token: String = db
            .query_one(
                "SELECT mcp_oauth_token('authorization_code',
                     mcp_oauth_authorize($1, $2, 'http://127.0.0.1:9/cb', $3, $4) ->> 'code',
                     $2, $5, 'http://127.0.0.1:9/cb', $4) ->> 'access_token'",
                &[key, &client, &challenge, &resource, &verifier],
            )?
            .get(0);
        tokens.push(token);
    }
    eprintln!("http: OAuth tokens against keys...");
    let (mut by_key, mut by_token) = (Vec::new(), Vec::new());
    for round in ["key", "token", "token", "key"] {
        let bearers = if round == "key" { keys } else { &tokens[..] };
        let times = drive(TOKEN_CLIENTS, bearers, over_http(&server.url))?;
        if round == "key" {
            by_key.extend(times);
        } else {
            by_token.extend(times);
        }
    }
    by_key.sort();
    by_token.sort();
    // Calls made in the same time: the throughput ratio.
    let ratio = by_token.len() as f64 / by_key.len().max(1) as f64;
    Ok(Row {
        what: format!(
            "tools/call fetch_jobs (limit 1) over HTTP with an OAuth access token, {TOKEN_CLIENTS} clients, 2 x {SECONDS} s each way (key, token, token, key)"
        ),
        figure: format!(
            "{:.0} calls/s, p50 {}",
            by_token.len() as f64 / (2 * SECONDS) as f64,
            ms(p(&by_token, 0.5))
        ),
        ratio: format!(
            "{:.0}% of the same calls with the keys ({:.0} calls/s, p50 {})",
            ratio * 100.0,
            by_key.len() as f64 / (2 * SECONDS) as f64,
            ms(p(&by_key, 0.5))
        ),
        goal: "≥ 90% (a token costs within 10% of a key)".into(),
        verdict: verdict(ratio >= 0.9),
    })
}
