//! `mcp-auth serve --http ADDR`: one process, next to the database, serving every
//! tenant over MCP's Streamable HTTP transport (rmcp's server, both protocol eras).
//! The key travels per request as `Authorization: Bearer mcp_...`; the database
//! login stays with the operator. Around rmcp's service (`gate`): 503 while
//! draining, 401 without a key (no JSON-RPC body needed to learn it), 413 for a
//! body over the limit before it is read, 429 past a key's concurrent requests, and
//! 401 for a key the database refused. Beside it: `/healthz` and `/metrics`.
//!
//! No session is kept (rmcp's stateless mode, answers as plain JSON): every request
//! stands alone, so there is nothing to expire, nothing to lose on a restart, and
//! one key's requests can come through any connection.

mod gate;
mod listener;
pub mod metrics;

pub use gate::bearer;

use crate::db::Database;
use crate::error::Error;
use crate::handler::McpAuthServer;
use axum::routing::get;
use axum::Router;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What `serve --http` was told.
pub struct Options {
    pub addr: SocketAddr,
    /// Browser origins allowed besides none (a request without Origin always passes).
    pub allow_origins: Vec<String>,
    /// Host names the server answers to, besides loopback ones and the listen address.
    pub allow_hosts: Vec<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_body_bytes: usize,
    pub max_in_flight_per_key: usize,
    pub shutdown_grace: Duration,
}

impl Options {
    /// The listener's rules, checked before anything starts.
    pub fn check(&self) -> Result<(), Error> {
        if self.tls.is_none() && !self.addr.ip().is_loopback() {
            return Err(Error::Config(format!(
                "--http {}: a listener off loopback needs TLS (--tls-cert and --tls-key): keys travel in every request",
                self.addr
            )));
        }
        if self.max_body_bytes < 1024 {
            return Err(Error::Config(
                "--max-body: must be at least 1024 bytes".into(),
            ));
        }
        if self.max_in_flight_per_key == 0 {
            return Err(Error::Config(
                "--max-in-flight-per-key: must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Shared by the gate, the handlers and the metrics endpoint.
pub struct State {
    pub db: Arc<Database>,
    pub metrics: metrics::Metrics,
    pub gate: gate::Gate,
}

pub async fn serve(options: Options, db: Database) -> Result<(), Error> {
    options.check()?;
    let db = Arc::new(db);
    let metrics = metrics::Metrics::new();
    let state = Arc::new(State {
        db: db.clone(),
        metrics: metrics.clone(),
        gate: gate::Gate::new(options.max_body_bytes, options.max_in_flight_per_key),
    });
    let stop = CancellationToken::new();

    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    hosts.push(options.addr.ip().to_string());
    hosts.extend(options.allow_hosts.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_allowed_origins(options.allow_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(stop.child_token());
    let (for_service, for_metrics) = (db.clone(), metrics.clone());
    let mcp = StreamableHttpService::new(
        move || {
            Ok(McpAuthServer::for_http(
                for_service.clone(),
                for_metrics.clone(),
            ))
        },
        Arc::new(NeverSessionManager::default()),
        config,
    );

    let app = Router::new()
        .route("/healthz", get(gate::healthz))
        .route("/metrics", get(gate::metrics))
        .route_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::check,
        ))
        .with_state(state.clone());

    let shutdown = {
        let (state, stop) = (state.clone(), stop.clone());
        let grace = options.shutdown_grace;
        async move {
            terminated().await;
            eprintln!("mcp-auth: stopping: new requests get 503, in-flight ones finish");
            state.gate.drain(grace).await;
            stop.cancel();
        }
    };
    eprintln!(
        "mcp-auth: serving MCP over {} on {} (/mcp, /healthz, /metrics)",
        if options.tls.is_some() {
            "HTTPS"
        } else {
            "HTTP"
        },
        options.addr
    );
    match &options.tls {
        None => {
            let listener = tokio::net::TcpListener::bind(options.addr)
                .await
                .map_err(|e| Error::Config(format!("--http {}: {e}", options.addr)))?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|e| Error::Failed(format!("HTTP server: {e}")))
        }
        Some((cert, key)) => {
            let listener = listener::TlsListener::bind(options.addr, cert, key).await?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|e| Error::Failed(format!("HTTPS server: {e}")))
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = ctrl_c => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
