//! `mcp-auth`: the stdio MCP server in front of the mcp_auth extension.
//!
//! It is only a protocol adapter: every `tools/list` is one `list_tools(key)` call
//! and every `tools/call` one `call_tool(key, tool, arguments, client)` call, in which
//! the database authenticates, authorizes, rate limits, runs the tool and audits.
//! Stdout carries MCP messages only; diagnostics go to stderr and never include a key.

mod audit;
mod bearer;
mod cancels;
mod cli;
mod conninfo;
mod db;
mod error;
mod handler;
mod http;
mod jsonrpc;
mod metrics;
mod report;
mod stdio;
mod tls;

use clap::{Args as ClapArgs, Parser, Subcommand};
use rmcp::ServiceExt;
use std::net::SocketAddr;
use std::path::PathBuf;

const ENVIRONMENT: &str = "Environment:
  DATABASE_URL   PostgreSQL connection string. For serve, a role that is only a member of
                 mcp_client; for keys and status, a superuser or a member of mcp_admin.
  MCP_API_KEY    stdio: the MCP key to use when a request carries no params._meta.apiKey
                 (over HTTP there is none: each request brings its own key)
  MCP_POOL_SIZE  database connections of `serve` (default 4): a slow call never
                 holds up the others";

/// The stdio MCP server in front of the mcp_auth extension, and its operator commands.
#[derive(Parser)]
#[command(name = "mcp-auth", version, after_help = ENVIRONMENT)]
struct Args {
    /// Machine-readable output (JSON)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The MCP server: over stdio, what Claude Desktop starts (the default), or over
    /// HTTP with --http
    Serve(Serve),
    /// Create, list, rotate, disable keys and read their statistics
    Keys {
        #[command(subcommand)]
        action: cli::KeyAction,
    },
    /// The server indicator of a tenant: online, offline, degraded or unknown
    Status {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
    },
    /// Live toasts of MCP calls (LISTEN mcp_activity)
    Watch {
        /// Only this tenant's calls
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
    },
    /// The troubleshooting checklist, run for real
    Doctor,
    /// The tamper-evident audit: signing keys, signed checkpoints, offline verification
    Audit {
        #[command(subcommand)]
        action: audit::AuditAction,
    },
}

#[derive(ClapArgs, Default)]
struct Serve {
    /// Serve MCP over Streamable HTTP on this address (e.g. 127.0.0.1:8080) instead of
    /// stdio; every request brings its key as `Authorization: Bearer mcp_...`
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// A browser origin allowed to call (e.g. https://app.example.com:443); repeatable.
    /// Requests with any other Origin header get 403; requests without one pass
    #[arg(long = "allow-origin", value_name = "ORIGIN", requires = "http")]
    allow_origins: Vec<String>,
    /// A host name the server answers to besides loopback and the listen address; repeatable
    #[arg(long = "allow-host", value_name = "HOST", requires = "http")]
    allow_hosts: Vec<String>,
    /// PEM certificate chain for HTTPS (required off loopback)
    #[arg(long, value_name = "FILE", requires_all = ["http", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS
    #[arg(long, value_name = "FILE", requires_all = ["http", "tls_cert"])]
    tls_key: Option<PathBuf>,
    /// Database connections (overrides MCP_POOL_SIZE; default 4)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_POOL as i64))]
    pool_size: Option<u16>,
    /// statement_timeout of each database connection, in milliseconds (0: none)
    #[arg(long, value_name = "MS")]
    statement_timeout: Option<u32>,
    /// Largest request body, in bytes; larger ones get 413 before they are read
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024, requires = "http")]
    max_body: usize,
    /// Requests of one key in flight at once, below the pool size; more get 429
    /// [default: half the pool]
    #[arg(long, value_name = "N", requires = "http")]
    max_in_flight_per_key: Option<usize>,
    /// Connections open at once; more get 503
    #[arg(long, value_name = "N", default_value_t = 1024, requires = "http")]
    max_connections: usize,
    /// Connections open at once from one IP address; more get 503
    #[arg(
        long = "max-connections-per-ip",
        value_name = "N",
        default_value_t = 64,
        requires = "http"
    )]
    max_per_ip: usize,
    /// Seconds a client has to send a request's headers (and then its body), from the
    /// connection's start or the previous answer
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "http")]
    header_timeout: u64,
    /// Seconds a connection may stay open with no request and nothing sent
    #[arg(long, value_name = "SECONDS", default_value_t = 60, requires = "http")]
    idle_timeout: u64,
    /// Threads serving requests; one is enough unless the database has many more
    /// cores than the pool has connections to keep busy
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(usize))]
    threads: usize,
    /// On SIGTERM, how long in-flight requests may take to finish, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "http")]
    shutdown_grace: u64,
    /// Also be an OAuth 2.1 authorization server, at this public URL (e.g.
    /// https://mcp.example.com): hosts then connect by the URL alone, and the user
    /// consents with their MCP key on a page served here
    #[arg(long, value_name = "URL", requires = "http")]
    oauth_issuer: Option<String>,
    /// OAuth clients one address may register in a day
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        requires = "oauth_issuer"
    )]
    oauth_clients_per_ip: u32,
    /// MCP keys one address may try on the consent page in a minute
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        requires = "oauth_issuer"
    )]
    oauth_attempts_per_minute: u32,
    /// Fetch client metadata documents from http and private addresses too (tests only)
    #[arg(long, requires = "oauth_issuer")]
    oauth_allow_private_clients: bool,
}

// Many small allocations per request (headers, JSON values, futures): mimalloc
// makes them cheaper than glibc's malloc (the server's CPU per call is a goal).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The largest pool, from the flag or the environment.
const MAX_POOL: usize = 256;

fn main() {
    let args = Args::parse();
    // One thread by default: the server's work per call is small beside the
    // database's, and one thread spends no CPU handing requests between threads.
    let threads = match &args.command {
        Some(Command::Serve(serve)) => serve.threads,
        _ => 1,
    };
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    runtime.expect("a tokio runtime").block_on(run(args));
}

async fn run(args: Args) {
    // Diagnostics on stderr (stdout carries MCP messages over stdio); never a key.
    // The server's own lines from INFO, hyper's from WARN; none of rmcp's, whose
    // warnings quote what clients sent (ids, method names: anything, keys too).
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("mcp_auth", tracing::Level::INFO)
        .with_target("rmcp", tracing_subscriber::filter::LevelFilter::OFF)
        .with_default(tracing::Level::WARN);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false)
                .without_time(),
        )
        .with(filter)
        .init();
    if let Some(Command::Audit {
        action: audit::AuditAction::Keygen { out },
    }) = &args.command
    {
        // The one command without a database.
        if let Err(e) = audit::keygen(out) {
            tracing::error!("{e}");
            std::process::exit(1);
        }
        return;
    }
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        tracing::error!("DATABASE_URL is not set\n\n{ENVIRONMENT}");
        std::process::exit(2);
    };
    let target = match tls::Target::new(&url) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e}");
            std::process::exit(2);
        }
    };
    let default_key = std::env::var("MCP_API_KEY").ok().filter(|k| !k.is_empty());
    let cli = cli::Cli::new(target.clone(), args.json);
    let mut serve = Serve::default();
    let outcome = match args.command.unwrap_or(Command::Serve(Serve::default())) {
        Command::Serve(options) => {
            serve = options;
            None
        }
        Command::Keys { action } => Some(cli.keys(action).await),
        Command::Status { tenant } => Some(cli.status(&tenant).await),
        Command::Watch { tenant } => Some(cli.watch(tenant).await),
        Command::Doctor => Some(cli.doctor(default_key.clone()).await),
        Command::Audit { action } => Some(cli.audit(action).await),
    };
    if let Some(result) = outcome {
        if let Err(e) = result {
            tracing::error!("{}", mcp_auth_core::redact::text(&e.to_string()));
            std::process::exit(1);
        }
        return;
    }
    let pool_size = match std::env::var("MCP_POOL_SIZE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        _ if serve.pool_size.is_some() => serve.pool_size.map_or(0, usize::from),
        None => db::DEFAULT_POOL_SIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_POOL).contains(&n) => n,
            _ => {
                tracing::error!("MCP_POOL_SIZE: must be a number from 1 to {MAX_POOL} (got {s:?})");
                std::process::exit(2);
            }
        },
    };
    if let Some(addr) = serve.http {
        // No server-wide key over HTTP: MCP_API_KEY is ignored there.
        let mut db = db::Database::new(target, None, pool_size);
        if let Some(ms) = serve.statement_timeout {
            db = db.with_statement_timeout(ms);
        }
        let options = http::Options {
            addr,
            allow_origins: serve.allow_origins,
            allow_hosts: serve.allow_hosts,
            tls: serve.tls_cert.zip(serve.tls_key),
            max_body_bytes: serve.max_body,
            max_in_flight_per_key: serve.max_in_flight_per_key,
            limits: http::Limits {
                max_connections: serve.max_connections,
                max_per_ip: serve.max_per_ip,
                header_timeout: std::time::Duration::from_secs(serve.header_timeout),
                idle_timeout: std::time::Duration::from_secs(serve.idle_timeout),
            },
            shutdown_grace: std::time::Duration::from_secs(serve.shutdown_grace),
            oauth: serve.oauth_issuer.map(|issuer| http::OAuthOptions {
                issuer,
                private_clients: serve.oauth_allow_private_clients,
                clients_per_ip: serve.oauth_clients_per_ip,
                attempts_per_minute: serve.oauth_attempts_per_minute,
                own_hosts: vec![],
                port: 0,
            }),
        };
        if let Err(e) = http::serve(options, db).await {
            tracing::error!("{}", mcp_auth_core::redact::text(&e.to_string()));
            std::process::exit(if matches!(e, error::Error::Config(_)) {
                2
            } else {
                1
            });
        }
        return;
    }
    let mut db = db::Database::new(target, default_key.clone(), pool_size);
    if let Some(ms) = serve.statement_timeout {
        db = db.with_statement_timeout(ms);
    }
    let server = handler::McpAuthServer::new(
        std::sync::Arc::new(db),
        handler::Transport::Stdio { default_key },
    );
    let running = match server.serve(stdio::transport()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("MCP session did not start: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = running.waiting().await {
        tracing::error!("MCP session ended with an error: {e}");
        std::process::exit(1);
    }
}
