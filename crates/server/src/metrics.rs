//! `/metrics`, in the Prometheus text format: calls by tool and outcome, their
//! latency, the pool in use, and refusals by type. Tool names are labels only for
//! calls the database answered for a tool (a client may name anything it likes
//! otherwise, and labels must stay few), and only in the registry's alphabet.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;

/// Every refusal type a label may name; anything else counts as `other`.
const REFUSALS: &[&str] = &[
    "missing_key",
    "bad_key",
    "malformed_key",
    "invalid_request",
    "too_many_connections",
    "too_many_from_address",
    "too_many_bodies",
    "host",
    "body_too_large",
    "too_many_in_flight",
    "origin",
    "draining",
    "authentication_error",
    "permission_error",
    "rate_limit_error",
];

/// A tool name as a label: only what a registered tool may be called (mcp_tools'
/// CHECK), so the text format never needs escaping and no label can carry a line.
fn label(tool: &str) -> String {
    let registrable = !tool.is_empty()
        && tool.len() <= 128
        && tool
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if registrable || tool.is_empty() {
        tool.to_string()
    } else {
        "other".to_string()
    }
}

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Mutex<Registry>,
    calls: Family<Labels, Counter>,
    latency: Histogram,
    refusals: Family<Labels, Counter>,
    pool_in_use: Gauge,
    pool_size: Gauge,
}

/// How a `tools/call` ended, as `/metrics` labels it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The tool ran and answered.
    Ok(String),
    /// The tool ran and failed (an `isError` result).
    ToolError(String),
    /// Refused before any tool ran: the envelope's type (authentication_error, ...).
    Refused(String),
    /// No such tool (-32602).
    UnknownTool,
    /// Refused by the server before the database saw it (a NUL in the request).
    Invalid,
    /// The database could not be reached.
    Unavailable,
}

impl Metrics {
    pub fn new() -> Self {
        let calls = Family::<Labels, Counter>::default();
        let refusals = Family::<Labels, Counter>::default();
        // 0.5 ms to about 8 s.
        let latency = Histogram::new(exponential_buckets(0.0005, 2.0, 15));
        let (pool_in_use, pool_size) = (Gauge::default(), Gauge::default());
        let mut registry = Registry::with_prefix("mcp_auth");
        registry.register(
            "calls",
            "tools/call requests by tool and outcome",
            calls.clone(),
        );
        registry.register(
            "call_duration_seconds",
            "tools/call latency in the server, database included",
            latency.clone(),
        );
        registry.register(
            "refusals",
            "requests refused, by type (HTTP: missing_key, malformed_key, bad_key, invalid_request, body_too_large, too_many_in_flight, too_many_connections, host, origin, draining; database: authentication_error, permission_error, rate_limit_error)",
            refusals.clone(),
        );
        registry.register(
            "pool_in_use",
            "database connections in use",
            pool_in_use.clone(),
        );
        registry.register(
            "pool_size",
            "database connections the pool may hold",
            pool_size.clone(),
        );
        Metrics(Arc::new(Inner {
            registry: Mutex::new(registry),
            calls,
            latency,
            refusals,
            pool_in_use,
            pool_size,
        }))
    }

    pub fn call(&self, outcome: &Outcome, took: Duration) {
        let (tool, what) = match outcome {
            Outcome::Ok(tool) => (tool.as_str(), "ok"),
            Outcome::ToolError(tool) => (tool.as_str(), "tool_error"),
            Outcome::Refused(kind) => {
                self.refused(kind);
                ("", "refused")
            }
            Outcome::UnknownTool => ("", "unknown_tool"),
            Outcome::Invalid => ("", "invalid"),
            Outcome::Unavailable => ("", "unavailable"),
        };
        self.0
            .calls
            .get_or_create(&vec![("tool", label(tool)), ("outcome", what.to_string())])
            .inc();
        self.0.latency.observe(took.as_secs_f64());
    }

    pub fn refused(&self, kind: &str) {
        let kind = if REFUSALS.contains(&kind) {
            kind
        } else {
            "other"
        };
        self.0
            .refusals
            .get_or_create(&vec![("type", kind.to_string())])
            .inc();
    }

    pub fn render(&self, pool_in_use: usize, pool_size: usize) -> String {
        self.0.pool_in_use.set(pool_in_use as i64);
        self.0.pool_size.set(pool_size as i64);
        let mut text = String::new();
        let registry = self.0.registry.lock().expect("metrics lock");
        encode(&mut text, &registry).expect("writing to a String");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_in_the_registrys_alphabet() {
        assert_eq!(label("fetch_jobs"), "fetch_jobs");
        assert_eq!(
            label("evil\"} 1\nmcp_auth_pool_size 99999\n# x{a=\""),
            "other"
        );
        assert_eq!(label(&"a".repeat(129)), "other");
        let m = Metrics::new();
        m.refused("made up");
        m.call(&Outcome::Invalid, Duration::from_millis(1));
        let text = m.render(0, 4);
        assert!(
            text.contains("mcp_auth_refusals_total{type=\"other\"} 1"),
            "{text}"
        );
        assert!(text.contains("outcome=\"invalid\""), "{text}");
    }
}
