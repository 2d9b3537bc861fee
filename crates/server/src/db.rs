//! The one database connection: opened on first use, opened again when PostgreSQL
//! closed it (a restart, pg_terminate_backend). A request is sent again only when
//! the connection was already closed before it went out, so a write never runs twice.

use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::Client;

pub struct Database {
    target: crate::tls::Target,
    client: Mutex<Option<Client>>,
    /// MCP_API_KEY: with it, each (re)connection is recorded as a server event and a
    /// health check of the key's tenant (when that tenant's configuration enables them).
    key: Option<String>,
    connections: std::sync::atomic::AtomicU32,
}

impl Database {
    pub fn new(target: crate::tls::Target, key: Option<String>) -> Self {
        Self {
            target,
            client: Mutex::new(None),
            key,
            connections: std::sync::atomic::AtomicU32::new(0),
        }
    }

    async fn connect(&self) -> Result<Client, String> {
        let started = std::time::Instant::now();
        let (client, connection) = self.target.connect().await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("mcp-auth: database connection closed: {e}");
            }
        });
        let n = self
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(key) = &self.key {
            let (event, message) = if n == 0 {
                ("connected", "mcp-auth serve connected to the database")
            } else {
                (
                    "reconnected",
                    "mcp-auth serve reconnected after a lost connection",
                )
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
                eprintln!("mcp-auth: MCP_API_KEY is not valid; requests need a valid _meta.apiKey");
            }
        }
        Ok(client)
    }

    /// Runs `sql` (one jsonb-returning call of the extension) with text parameters.
    pub async fn call(&self, sql: &str, params: &[&str]) -> Result<Value, String> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(self.connect().await?);
        }
        let client = guard.as_ref().expect("connected above");
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let row = client
            .query_one(sql, &params)
            .await
            .map_err(|e| format!("database error: {e}"))?;
        let text: String = row.get(0);
        serde_json::from_str(&text).map_err(|e| format!("unreadable answer from the database: {e}"))
    }
}
