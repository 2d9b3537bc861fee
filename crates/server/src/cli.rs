//! The operator commands of `mcp-auth`, for a DBA or an admin connection
//! (DATABASE_URL of a superuser or of a member of mcp_admin; `--tenant` sets
//! mcp_auth.tenant_id). Each is a call of the extension's SQL API.

use clap::{Subcommand, ValueEnum};
use futures_util::StreamExt;
use mcp_auth_core::envelope::Envelope;
use serde_json::{json, Value};
use tokio_postgres::{AsyncMessage, Client};

#[derive(Subcommand)]
pub enum KeyAction {
    /// A new key; its value is printed this once
    Create {
        /// The tenant the key belongs to (a uuid)
        #[arg(long, value_name = "TENANT_ID")]
        tenant: String,
        /// Unique among the tenant's keys
        #[arg(long)]
        name: String,
        /// Allowed tools, a JSON array of names and prefix* patterns
        #[arg(long, value_name = "JSON", default_value = r#"["*"]"#)]
        tools: String,
        #[arg(long, value_enum, default_value_t = Env::Live)]
        env: Env,
        /// Calls per minute
        #[arg(long, value_name = "N", default_value_t = 100)]
        rate_limit: i32,
    },
    /// The tenant's keys: prefix, status, usage (never a hash)
    List {
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
    },
    /// A new key with the same settings; the old one works until the grace period ends
    Rotate {
        key_id: String,
        /// How long the old key keeps working, e.g. '1 hour'
        #[arg(long, value_name = "INTERVAL", default_value = "0")]
        grace: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
    },
    /// Disable a key (enable it again with SQL: enable_mcp_key)
    Disable {
        key_id: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
    },
    /// A key's statistics
    Stats {
        key_id: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
    },
    /// End every OAuth token a client holds for the tenant's keys (keys list names
    /// each key's clients); the client must ask its user again
    RevokeClient {
        client_id: String,
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Env {
    Live,
    Test,
}

pub struct Cli {
    target: crate::tls::Target,
    json: bool,
}

use crate::error::{Error, Result};

impl Cli {
    pub fn new(target: crate::tls::Target, json: bool) -> Self {
        Self { target, json }
    }

    async fn connect(&self, tenant: Option<&str>) -> Result<Client> {
        let (client, connection) = self.target.connect().await?;
        tokio::spawn(connection);
        if let Some(t) = tenant {
            client
                .execute("SELECT set_config('mcp_auth.tenant_id', $1, false)", &[&t])
                .await
                .map_err(|e| Error::Failed(format!("mcp_auth.tenant_id: {}", Error::from(e))))?;
        }
        Ok(client)
    }

    /// Runs `sql` (which returns one jsonb column per row) and prints the rows.
    async fn rows(&self, client: &Client, sql: &str, params: &[&str]) -> Result<Vec<Value>> {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let rows = client.query(sql, &params).await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&r.get::<_, String>(0))?))
            .collect()
    }

    fn print(&self, rows: &[Value]) {
        if self.json {
            println!("{}", Value::Array(rows.to_vec()));
            return;
        }
        for row in rows {
            if let Value::Object(map) = row {
                let line: Vec<String> = map
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}: {s}"),
                        other => format!("{k}: {other}"),
                    })
                    .collect();
                println!("{}", line.join("  "));
            }
        }
    }

    pub async fn keys(&self, action: KeyAction) -> Result<()> {
        let tenant = match &action {
            KeyAction::Create { tenant, .. } => Some(tenant.clone()),
            KeyAction::List { tenant }
            | KeyAction::Rotate { tenant, .. }
            | KeyAction::Disable { tenant, .. }
            | KeyAction::Stats { tenant, .. }
            | KeyAction::RevokeClient { tenant, .. } => tenant.clone(),
        };
        let client = self.connect(tenant.as_deref()).await?;
        // Each action's statement, its parameters, and whether its answer holds a key.
        let (sql, params, reveals_key): (&str, Vec<String>, bool) = match action {
            KeyAction::Create {
                tenant,
                name,
                tools,
                env,
                rate_limit,
            } => (
                "SELECT to_jsonb(k)::text FROM generate_mcp_key(
                     p_tenant_id := $1::text::uuid, p_name := $2,
                     p_environment := $3, p_allowed_tools := $4::text::jsonb,
                     p_rate_limit := $5::text::int) k",
                vec![
                    tenant,
                    name,
                    match env {
                        Env::Live => "live",
                        Env::Test => "test",
                    }
                    .into(),
                    tools,
                    rate_limit.to_string(),
                ],
                true,
            ),
            KeyAction::List { .. } => (
                "SELECT jsonb_build_object('id', id, 'name', name, 'key_prefix', key_prefix,
                        'environment', environment, 'status', status, 'rate_limit', rate_limit,
                        'usage_count', usage_count, 'last_used_at', last_used_at,
                        'oauth_clients', oauth_clients)::text
                   FROM mcp_keys ORDER BY created_at",
                vec![],
                false,
            ),
            KeyAction::Rotate { key_id, grace, .. } => (
                "SELECT to_jsonb(k)::text FROM rotate_mcp_key($1::text::uuid, $2::text::interval) k",
                vec![key_id, grace],
                true,
            ),
            KeyAction::Disable { key_id, .. } => (
                "SELECT jsonb_build_object('disabled', disable_mcp_key($1::text::uuid))::text",
                vec![key_id],
                false,
            ),
            KeyAction::RevokeClient { client_id, .. } => (
                "SELECT jsonb_build_object('client_id', $1::text,
                        'tokens_revoked', revoke_mcp_oauth_client($1))::text",
                vec![client_id],
                false,
            ),
            KeyAction::Stats { key_id, .. } => (
                "SELECT to_jsonb(s)::text FROM get_mcp_key_stats($1::text::uuid) s",
                vec![key_id],
                false,
            ),
        };
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        let rows = self.rows(&client, sql, &params).await?;
        self.print(&rows);
        if !self.json && reveals_key {
            eprintln!("Copy the api_key now: it is shown only this once.");
        }
        Ok(())
    }

    /// The admin sidebar's indicator for a tenant.
    /// `mcp-auth audit checkpoint` and `verify` (keygen needs no database).
    pub async fn audit(&self, action: crate::audit::AuditAction) -> Result<()> {
        use crate::audit::{self, AuditAction};
        let client = self.connect(None).await?;
        match action {
            AuditAction::Keygen { out } => audit::keygen(&out),
            AuditAction::Checkpoint { sign, out } => {
                audit::checkpoint(&client, sign.as_deref(), out.as_deref()).await
            }
            AuditAction::Verify {
                tenant,
                checkpoint,
                public_key,
                other_database,
            } => {
                let signed = checkpoint.as_deref().zip(public_key.as_deref());
                audit::verify(
                    &client,
                    tenant.as_deref(),
                    signed,
                    other_database,
                    self.json,
                )
                .await
            }
        }
    }

    pub async fn status(&self, tenant: &str) -> Result<()> {
        let client = self.connect(Some(tenant)).await?;
        let rows = self
            .rows(
                &client,
                "SELECT to_jsonb(s)::text FROM get_mcp_server_status() s",
                &[],
            )
            .await?;
        if self.json {
            self.print(&rows);
            return Ok(());
        }
        let s = &rows[0];
        let dot = match s["status"].as_str() {
            Some("online") => "● online (green)",
            Some("offline") => "● offline (red)",
            Some("degraded") => "● degraded (yellow)",
            _ => "● unknown (gray)",
        };
        println!("{dot}");
        println!(
            "  last check:    {}",
            s["last_check"].as_str().unwrap_or("never")
        );
        if let Some(ms) = s["response_time_ms"].as_i64() {
            println!("  response time: {ms} ms");
        }
        if let Some(e) = s["error_message"].as_str() {
            println!("  error:         {e}");
        }
        Ok(())
    }

    /// Live toasts from NOTIFY mcp_activity, like the admin panel's.
    pub async fn watch(&self, tenant: Option<String>) -> Result<()> {
        let (client, mut connection) = self.target.connect().await?;
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(m)) = messages.next().await {
                if let AsyncMessage::Notification(n) = m {
                    let _ = tx.send(n.payload().to_string());
                }
            }
        });
        client.batch_execute("LISTEN mcp_activity").await?;
        eprintln!("watching mcp_activity (Ctrl-C to stop)");
        while let Some(payload) = rx.recv().await {
            let v: Value = serde_json::from_str(&payload).unwrap_or(json!({}));
            if tenant
                .as_deref()
                .is_some_and(|t| v["tenant_id"].as_str() != Some(t))
            {
                continue;
            }
            if self.json {
                println!("{v}");
            } else if v["success"] == json!(true) {
                println!("⚡ MCP Tool Executed\nTool \"{}\" executed successfully\nResponse time: {}ms\n",
                         v["tool"].as_str().unwrap_or("?"), v["response_time_ms"]);
            } else {
                println!(
                    "⚠ MCP Tool Failed\nTool \"{}\" execution failed\nError: {}\n",
                    v["tool"].as_str().unwrap_or("?"),
                    v["error"].as_str().unwrap_or("?")
                );
            }
        }
        Ok(())
    }

    /// The Eryxon Flow MCP Integration Guide's "Test Connection" checklist, run for real.
    pub async fn doctor(&self, key: Option<String>) -> Result<()> {
        let mut failed = false;
        let mut report = |ok: bool, what: &str, detail: String| {
            failed |= !ok;
            println!(
                "{} {what}{}",
                if ok { "✔" } else { "✘" },
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            );
        };
        let client = match self.connect(None).await {
            Ok(c) => {
                report(true, "database reachable", String::new());
                c
            }
            Err(e) => {
                report(false, "database reachable", e.to_string());
                return Err(Error::Failed("doctor found problems".into()));
            }
        };
        let ext = client
            .query_opt(
                "SELECT extversion FROM pg_extension WHERE extname = 'mcp_auth'",
                &[],
            )
            .await?;
        report(
            ext.is_some(),
            "extension mcp_auth installed",
            ext.map(|r| r.get::<_, String>(0))
                .unwrap_or_else(|| "CREATE EXTENSION mcp_auth".into()),
        );
        let role = client
            .query_one(
                "SELECT current_user::text, pg_has_role(current_user, 'mcp_client', 'MEMBER'),
                        (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)",
                &[],
            )
            .await
?;
        let (user, member, powerful): (String, bool, bool) =
            (role.get(0), role.get(1), role.get(2));
        report(
            member && !powerful,
            "login role is a member of mcp_client and bypasses nothing",
            format!(
                "{user}{}",
                if powerful {
                    " is a superuser or BYPASSRLS: use a mcp_client role"
                } else {
                    ""
                }
            ),
        );
        match key {
            None => report(
                false,
                "MCP_API_KEY set",
                "not set (requests must carry _meta.apiKey)".into(),
            ),
            Some(k) => {
                let v = self
                    .rows(&client, "SELECT list_tools($1)::text", &[&k])
                    .await?
                    .pop()
                    .unwrap_or(Value::Null);
                let (ok, detail) = match Envelope::read(v) {
                    Envelope::Ok(r) => (
                        true,
                        format!(
                            "{} tools allowed",
                            r["tools"].as_array().map_or(0, Vec::len)
                        ),
                    ),
                    Envelope::Failed(f) => (false, f.message),
                };
                report(ok, "MCP_API_KEY is valid", detail);
            }
        }
        if failed {
            Err(Error::Failed("doctor found problems".into()))
        } else {
            Ok(())
        }
    }
}
