//! `mcp-auth`: the stdio MCP server in front of the mcp_auth extension.
//!
//! It is only a protocol adapter: every `tools/list` is one `list_tools(key)` call
//! and every `tools/call` one `call_tool(key, tool, arguments, client)` call, in which
//! the database authenticates, authorizes, rate limits, runs the tool and audits.
//! Stdout carries MCP messages only; diagnostics go to stderr and never include a key.

mod db;
mod handler;

use rmcp::ServiceExt;

const USAGE: &str = "usage: mcp-auth serve

Environment:
  DATABASE_URL   PostgreSQL connection string; its role should only be a member of mcp_client
  MCP_API_KEY    the MCP key to use when a request carries no params._meta.apiKey";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") | None => {}
        Some("--help") | Some("-h") | Some("help") => {
            println!("{USAGE}");
            return;
        }
        Some(other) => {
            eprintln!("mcp-auth: unknown command {other:?}\n{USAGE}");
            std::process::exit(2);
        }
    }
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("mcp-auth: DATABASE_URL is not set\n{USAGE}");
        std::process::exit(2);
    };
    let default_key = std::env::var("MCP_API_KEY").ok().filter(|k| !k.is_empty());
    let server = handler::McpAuthServer::new(db::Database::new(url), default_key);
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
