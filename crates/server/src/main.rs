//! `mcp-auth`: the stdio MCP server in front of the mcp_auth extension.
//!
//! It is only a protocol adapter: every `tools/list` is one `list_tools(key)` call
//! and every `tools/call` one `call_tool(key, tool, arguments, client)` call, in which
//! the database authenticates, authorizes, rate limits, runs the tool and audits.
//! Stdout carries MCP messages only; diagnostics go to stderr and never include a key.

mod cli;
mod db;
mod handler;
mod tls;

use rmcp::ServiceExt;

const USAGE: &str = "usage:
  mcp-auth serve                      the stdio MCP server (what Claude Desktop starts)
  mcp-auth keys create --tenant T --name N [--tools JSON] [--env live|test] [--rate-limit N]
  mcp-auth keys list [--tenant T]     keys rotate ID [--grace '1 hour']
  mcp-auth keys disable ID            keys stats ID
  mcp-auth status --tenant T          the server indicator: online, offline, degraded, unknown
  mcp-auth watch [--tenant T]         live toasts of MCP calls (NOTIFY mcp_activity)
  mcp-auth doctor                     the troubleshooting checklist, run for real
  Add --json for machine-readable output.

Environment:
  DATABASE_URL   PostgreSQL connection string. For serve, a role that is only a member of
                 mcp_client; for keys and status, a superuser or a member of mcp_admin.
  MCP_API_KEY    the MCP key to use when a request carries no params._meta.apiKey";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("serve");
    if matches!(command, "--help" | "-h" | "help") {
        println!("{USAGE}");
        return;
    }
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("mcp-auth: DATABASE_URL is not set\n{USAGE}");
        std::process::exit(2);
    };
    let default_key = std::env::var("MCP_API_KEY").ok().filter(|k| !k.is_empty());
    let rest = args.get(1..).unwrap_or_default();
    let cli = cli::Cli::new(url.clone(), rest);
    let outcome = match command {
        "serve" => None,
        "keys" => Some(cli.keys(rest).await),
        "status" => Some(cli.status(rest).await),
        "watch" => Some(cli.watch(rest).await),
        "doctor" => Some(cli.doctor(default_key.clone()).await),
        other => Some(Err(format!("unknown command {other:?}\n{USAGE}"))),
    };
    if let Some(result) = outcome {
        if let Err(e) = result {
            eprintln!("mcp-auth: {}", mcp_auth_core::redact::text(&e));
            std::process::exit(1);
        }
        return;
    }
    let server =
        handler::McpAuthServer::new(db::Database::new(url, default_key.clone()), default_key);
    let running = match server.serve(rmcp::transport::stdio()).await {
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
