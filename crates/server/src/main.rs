//! `mcp-auth`: the stdio MCP server in front of the mcp_auth extension.
//!
//! It is only a protocol adapter: every `tools/list` is one `list_tools(key)` call
//! and every `tools/call` one `call_tool(key, tool, arguments, client)` call, in which
//! the database authenticates, authorizes, rate limits, runs the tool and audits.
//! Stdout carries MCP messages only; diagnostics go to stderr and never include a key.

mod cli;
mod conninfo;
mod db;
mod error;
mod handler;
mod stdio;
mod tls;

use clap::{Parser, Subcommand};
use rmcp::ServiceExt;

const ENVIRONMENT: &str = "Environment:
  DATABASE_URL   PostgreSQL connection string. For serve, a role that is only a member of
                 mcp_client; for keys and status, a superuser or a member of mcp_admin.
  MCP_API_KEY    the MCP key to use when a request carries no params._meta.apiKey
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
    /// The stdio MCP server, what Claude Desktop starts (the default)
    Serve,
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
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("mcp-auth: DATABASE_URL is not set\n\n{ENVIRONMENT}");
        std::process::exit(2);
    };
    let target = match tls::Target::new(&url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mcp-auth: {e}");
            std::process::exit(2);
        }
    };
    let default_key = std::env::var("MCP_API_KEY").ok().filter(|k| !k.is_empty());
    let cli = cli::Cli::new(target.clone(), args.json);
    let outcome = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => None,
        Command::Keys { action } => Some(cli.keys(action).await),
        Command::Status { tenant } => Some(cli.status(&tenant).await),
        Command::Watch { tenant } => Some(cli.watch(tenant).await),
        Command::Doctor => Some(cli.doctor(default_key.clone()).await),
    };
    if let Some(result) = outcome {
        if let Err(e) = result {
            eprintln!("mcp-auth: {}", mcp_auth_core::redact::text(&e.to_string()));
            std::process::exit(1);
        }
        return;
    }
    let pool_size = match std::env::var("MCP_POOL_SIZE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        None => db::DEFAULT_POOL_SIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                eprintln!("mcp-auth: MCP_POOL_SIZE: must be a number from 1 to 64 (got {s:?})");
                std::process::exit(2);
            }
        },
    };
    let db = db::Database::new(target, default_key.clone(), pool_size);
    let server = handler::McpAuthServer::new(db, default_key);
    let running = match server.serve(stdio::transport()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcp-auth: MCP session did not start: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = running.waiting().await {
        eprintln!("mcp-auth: MCP session ended with an error: {e}");
        std::process::exit(1);
    }
}
