//! `mcp-auth serve --http ADDR`: one process, next to the database, serving every
//! tenant over MCP's Streamable HTTP transport (rmcp's server, both protocol eras).
//! The key travels per request as `Authorization: Bearer mcp_...`; the database
//! login stays with the operator. The layers, outside in: `connections` (how many,
//! from where, how slow), `gate` (what a request must be before any database work,
//! and what is remembered of each key in `keys`), rmcp's service with the
//! `handler`, and beside it `routes` (`/healthz`, `/metrics`).
//!
//! No session is kept (rmcp's stateless mode, answers as plain JSON): every request
//! stands alone, so there is nothing to expire, nothing to lose on a restart, and
//! one key's requests can come through any connection.

mod connections;
mod gate;
mod https;
mod keys;
mod oauth;
mod routes;

pub use connections::Limits;
pub use oauth::Options as OAuthOptions;

use crate::cancels::Cancels;
use crate::db::Database;
use crate::error::Error;
use crate::handler::{McpAuthServer, Transport};
use crate::metrics::Metrics;
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
    /// Requests of one key in flight; None: half the pool.
    pub max_in_flight_per_key: Option<usize>,
    pub limits: Limits,
    pub shutdown_grace: Duration,
    /// `--oauth-issuer` and its settings: OAuth beside keys.
    pub oauth: Option<OAuthOptions>,
}

/// File descriptors besides the connections: the pool, the listener, the rest.
const SPARE_FILES: u64 = 64;

impl Options {
    /// The per-key share of the pool: below its size, so other keys always have a
    /// connection (half of it unless told).
    fn per_key(&self, pool_size: usize) -> usize {
        self.max_in_flight_per_key.unwrap_or((pool_size / 2).max(1))
    }

    /// The listener's rules, checked before anything starts.
    pub fn check(&self, pool_size: usize) -> Result<(), Error> {
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
        let per_key = self.per_key(pool_size);
        if per_key == 0 || (pool_size > 1 && per_key >= pool_size) {
            return Err(Error::Config(format!(
                "--max-in-flight-per-key: must be from 1 to {} (below the pool size, {pool_size}, so one key never holds every connection)",
                pool_size.saturating_sub(1).max(1)
            )));
        }
        let l = &self.limits;
        if l.max_connections == 0 || l.max_per_ip == 0 || l.max_per_ip > l.max_connections {
            return Err(Error::Config(
                "--max-connections and --max-connections-per-ip: must be at least 1, and per IP at most the total".into(),
            ));
        }
        if l.header_timeout.is_zero() || l.idle_timeout.is_zero() {
            return Err(Error::Config(
                "--header-timeout and --idle-timeout: must be at least 1 second".into(),
            ));
        }
        Ok(())
    }

    /// Raises the open-files limit to what `--max-connections` needs (up to the
    /// hard limit), or says why it cannot be had.
    fn open_files(&self, pool_size: usize) -> Result<(), Error> {
        let needed =
            (self.limits.max_connections + connections::REFUSING + pool_size) as u64 + SPARE_FILES;
        let got = rlimit::increase_nofile_limit(needed).unwrap_or(0);
        if got < needed {
            return Err(Error::Config(format!(
                "--max-connections {}: needs {needed} open files, and this process may open {got} (ulimit -n)",
                self.limits.max_connections
            )));
        }
        Ok(())
    }
}

/// Shared by the gate, the handlers and the routes.
pub struct State {
    pub db: Arc<Database>,
    pub metrics: Metrics,
    pub gate: gate::Gate,
    pub keys: keys::Keys,
    pub cancels: Arc<Cancels>,
    /// Host names answered to (lower case, no port).
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
    /// The last health answer, and when it was made (`routes::healthz`).
    pub health: tokio::sync::Mutex<Option<(std::time::Instant, routes::Health)>>,
    /// The authorization server, with `--oauth-issuer`.
    pub oauth: Option<oauth::OAuth>,
}

impl State {
    /// The authorization server; only its routes call this, and they exist only with it.
    fn oauth(&self) -> &oauth::OAuth {
        self.oauth
            .as_ref()
            .expect("OAuth routes exist only with --oauth-issuer")
    }
}

pub async fn serve(mut options: Options, mut db: Database) -> Result<(), Error> {
    options.check(db.pool_size())?;
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    hosts.push(options.addr.ip().to_string());
    hosts.extend(options.allow_hosts.iter().map(|h| h.to_ascii_lowercase()));
    let oauth = match options.oauth.take() {
        Some(mut o) => {
            o.own_hosts = hosts.clone();
            o.port = options.addr.port();
            let o = oauth::OAuth::new(o, db.pool_size())?;
            hosts.push(o.host.clone());
            Some(o)
        }
        None => None,
    };
    options.open_files(db.pool_size())?;
    if let Some(o) = &oauth {
        // The audience of the tokens this server accepts, on each of its connections.
        db = db.with_oauth_resource(o.resource.clone());
    }
    let db = Arc::new(db);
    let cancels = Arc::new(Cancels::default());

    let state = Arc::new(State {
        db: db.clone(),
        metrics: Metrics::new(),
        gate: gate::Gate::new(options.max_body_bytes, options.limits.header_timeout),
        keys: keys::Keys::new(options.per_key(db.pool_size()), db.pool_size()),
        cancels: cancels.clone(),
        hosts: hosts.clone(),
        origins: options.allow_origins.clone(),
        health: tokio::sync::Mutex::new(None),
        oauth,
    });
    let stop = CancellationToken::new();

    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_allowed_origins(options.allow_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(stop.child_token());
    let mcp = StreamableHttpService::new(
        move || {
            Ok(McpAuthServer::new(
                db.clone(),
                Transport::Http {
                    cancels: cancels.clone(),
                },
            ))
        },
        Arc::new(NeverSessionManager::default()),
        config,
    );

    let mut app = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route_service("/mcp", mcp);
    app = if state.oauth.is_some() {
        oauth::routes(app).layer(axum::middleware::from_fn(oauth::cors))
    } else {
        app.route("/register", axum::routing::post(routes::register))
    };
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::check,
        ))
        .with_state(state.clone());

    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| Error::Config(format!("--http {}: {e}", options.addr)))?;
    let tls = match &options.tls {
        Some((cert, key)) => Some(https::acceptor(cert, key)?),
        None => None,
    };
    {
        let (state, stop) = (state.clone(), stop.clone());
        let grace = options.shutdown_grace;
        tokio::spawn(async move {
            terminated().await;
            tracing::info!("stopping: new requests get 503, in-flight ones finish");
            state.gate.drain(grace).await;
            stop.cancel();
        });
    }
    tracing::info!(
        "serving MCP over {} on {} (/mcp, /healthz, /metrics{})",
        if tls.is_some() { "HTTPS" } else { "HTTP" },
        options.addr,
        match &state.oauth {
            Some(o) => format!("; OAuth as {}", o.issuer),
            None => String::new(),
        }
    );
    let metrics = state.metrics.clone();
    connections::serve(
        listener,
        tls,
        app,
        options.limits,
        stop,
        Duration::from_secs(5),
        move |why| metrics.refused(why),
    )
    .await;
    Ok(())
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
