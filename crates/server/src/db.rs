//! The server's database connections: a small pool, so that one slow call never
//! holds up another. Each connection prepares the two entry points once
//! (`list_tools`, `call_tool`) and keeps them; a connection PostgreSQL closed (a
//! restart, pg_terminate_backend) is replaced. A request is sent again only when its
//! connection was already closed before it went out, so a write never runs twice.

use crate::error::Error;
use serde_json::Value;
use std::sync::Mutex;
use tokio::sync::Semaphore;
use tokio_postgres::{Client, Statement};
use tokio_util::sync::CancellationToken;

/// The extension's entry points, as the server calls them.
#[derive(Clone, Copy)]
pub enum Entry {
    ListTools,
    CallTool,
}

impl Entry {
    fn sql(self) -> &'static str {
        match self {
            Entry::ListTools => "SELECT list_tools($1)::text",
            Entry::CallTool => "SELECT call_tool($1, $2, $3::text::jsonb, $4::text::jsonb)::text",
        }
    }
}

struct Connection {
    client: Client,
    list_tools: Statement,
    call_tool: Statement,
}

pub struct Database {
    target: crate::tls::Target,
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection the pool may hold.
    permits: Semaphore,
    size: usize,
    /// `statement_timeout` of every connection (milliseconds), when set.
    statement_timeout: Option<u32>,
    /// `mcp_auth.oauth_resource` of every connection: the audience of the OAuth
    /// access tokens it accepts (`--oauth-issuer`).
    oauth_resource: Option<String>,
    /// MCP_API_KEY: with it, each (re)connection is recorded as a server event and a
    /// health check of the key's tenant (when that tenant's configuration enables them).
    key: Option<String>,
}

/// When a call stops early: `abandon` before it has a connection (the client has
/// gone), `cancel` while it runs (the client asked).
pub struct Stop {
    pub abandon: CancellationToken,
    pub cancel: CancellationToken,
}

/// Connections of one server process, unless `MCP_POOL_SIZE` says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 4;

impl Database {
    pub fn new(target: crate::tls::Target, key: Option<String>, pool_size: usize) -> Self {
        Self {
            target,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(pool_size.max(1)),
            size: pool_size.max(1),
            statement_timeout: None,
            oauth_resource: None,
            key,
        }
    }

    /// Every connection's `statement_timeout`, in milliseconds (0: none).
    pub fn with_oauth_resource(mut self, resource: String) -> Self {
        self.oauth_resource = Some(resource);
        self
    }

    pub fn with_statement_timeout(mut self, ms: u32) -> Self {
        self.statement_timeout = Some(ms);
        self
    }

    pub fn pool_size(&self) -> usize {
        self.size
    }

    /// Connections taken by a request right now.
    pub fn in_use(&self) -> usize {
        self.size - self.permits.available_permits()
    }

    /// A new connection; `replacing` when it takes the place of one PostgreSQL closed.
    async fn connect(&self, replacing: bool) -> Result<Connection, Error> {
        let started = std::time::Instant::now();
        let (client, connection) = self.target.connect().await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("database connection closed: {e}");
            }
        });
        if let Some(ms) = self.statement_timeout {
            client
                .batch_execute(&format!("SET statement_timeout = {ms}"))
                .await?;
        }
        if let Some(resource) = &self.oauth_resource {
            client
                .execute(
                    "SELECT set_config('mcp_auth.oauth_resource', $1, false)",
                    &[resource],
                )
                .await?;
        }
        if let Some(key) = &self.key {
            let (event, message) = if replacing {
                (
                    "reconnected",
                    "mcp-auth serve reconnected after a lost connection",
                )
            } else {
                ("connected", "mcp-auth serve connected to the database")
            };
            let ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
            // One transaction: the key's tenant exists only while it is validated.
            let recorded = client
                .query_one(
                    "WITH k AS (SELECT * FROM validate_mcp_key($1))
                     SELECT log_mcp_server_event($2, $3, 'info',
                                jsonb_build_object('connect_ms', $4::int, 'version', $5::text)),
                            record_mcp_server_health('online', $4::int)
                       FROM k",
                    &[key, &event, &message, &ms, &env!("CARGO_PKG_VERSION")],
                )
                .await;
            if recorded.is_err() {
                tracing::warn!("MCP_API_KEY is not valid; requests need a valid _meta.apiKey");
            }
        }
        Ok(Connection {
            list_tools: client.prepare(Entry::ListTools.sql()).await?,
            call_tool: client.prepare(Entry::CallTool.sql()).await?,
            client,
        })
    }

    /// An open connection: an idle one, or a new one.
    async fn take(&self) -> Result<Connection, Error> {
        let mut replacing = false;
        loop {
            let idle = self.idle.lock().expect("pool lock").pop();
            match idle {
                Some(c) if c.client.is_closed() => replacing = true,
                Some(c) => return Ok(c),
                None => return self.connect(replacing).await,
            }
        }
    }

    fn give_back(&self, c: Connection) {
        if !c.client.is_closed() {
            self.idle.lock().expect("pool lock").push(c);
        }
    }

    /// Calls an entry point with text parameters; its jsonb answer, parsed. A call
    /// `stop.abandon`ed while it waits for a connection never runs (a client that has
    /// gone takes no connection); once it runs, only `stop.cancel` asks PostgreSQL to
    /// cancel the statement, whose answer (a handler cut short is an audited tool
    /// failure) is still awaited.
    pub async fn call(&self, entry: Entry, params: &[&str], stop: &Stop) -> Result<Value, Error> {
        let _permit = tokio::select! {
            permit = self.permits.acquire() => permit.expect("never closed"),
            _ = stop.abandon.cancelled() => return Err(Error::Abandoned),
        };
        let c = self.take().await?;
        let statement = match entry {
            Entry::ListTools => &c.list_tools,
            Entry::CallTool => &c.call_tool,
        };
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let row = {
            let query = c.client.query_one(statement, &params);
            tokio::pin!(query);
            tokio::select! {
                row = &mut query => row,
                _ = stop.cancel.cancelled() => {
                    self.target.cancel(&c.client.cancel_token()).await;
                    query.await
                }
            }
        };
        let text: Result<String, Error> = row.map(|r| r.get(0)).map_err(Error::from);
        self.give_back(c);
        Ok(serde_json::from_str(&text?)?)
    }

    /// A one-off query (the handshake's identity), on a pooled connection.
    pub async fn query_text(&self, sql: &str, params: &[&str]) -> Result<Option<String>, Error> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let c = self.take().await?;
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let row = c.client.query_opt(sql, &params).await;
        self.give_back(c);
        Ok(row?.and_then(|r| r.get(0)))
    }
}
