//! The one database connection: opened on first use, opened again when PostgreSQL
//! closed it (a restart, pg_terminate_backend). A request is sent again only when
//! the connection was already closed before it went out, so a write never runs twice.

use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

pub struct Database {
    url: String,
    client: Mutex<Option<Client>>,
}

impl Database {
    pub fn new(url: String) -> Self {
        Self {
            url,
            client: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<Client, String> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("mcp-auth: database connection closed: {e}");
            }
        });
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
