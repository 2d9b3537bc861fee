//! The audit trail (usage log and its hash chains, activity log, `mcp_activity`
//! notifications sent by the notifier worker) and per-key statistics.

pub mod chain;
pub mod notifier;
pub mod partitions;
pub mod redaction;
pub mod stats;
pub mod usage_log;
